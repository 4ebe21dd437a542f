package org.deepcad.fiji;

import java.awt.BorderLayout;
import java.util.List;
import javax.swing.BorderFactory;
import javax.swing.JComboBox;
import javax.swing.JPanel;
import org.scijava.Priority;
import org.scijava.plugin.Plugin;
import org.scijava.ui.AbstractUIInputWidget;
import org.scijava.ui.UserInterface;
import org.scijava.widget.InputWidget;
import org.scijava.widget.WidgetModel;

/**
 * The Device field of the DeepCAD dialogs: a choice list of this machine's devices (Automatic, CPU,
 * each CUDA device the engine finds; {@link DeviceChoice}) in place of a text field, for text inputs
 * with {@code style = }{@link DeviceChoice#STYLE}. The list is asked from the engine when the dialog is
 * built (the command has loaded the library by then); a value that names no device here (a saved
 * {@code cuda:1} on a one-GPU machine) is listed too, and the engine says why it cannot be used. Like
 * SciJava's own Swing widgets, a JPanel holding the control; a plugin of the jar, found by SciJava's
 * widget service.
 */
@Plugin(type = InputWidget.class, priority = Priority.HIGH)
public class DeviceWidget extends AbstractUIInputWidget<String, JPanel> {
    private JPanel panel;
    private JComboBox<String> combo;

    @Override
    public boolean supports(WidgetModel model) {
        return super.supports(model)
                && model.isText()
                && model.isStyle(DeviceChoice.STYLE)
                && NativeLibrary.loadedFrom() != null;
    }

    @Override
    public void set(WidgetModel model) {
        super.set(model);
        List<String> choices = DeviceChoice.choices(DeepCadNative.devicesJson());
        Object value = model.getValue();
        if (value != null && !value.toString().isEmpty() && !choices.contains(value.toString()))
            choices.add(value.toString());
        panel = new JPanel(new BorderLayout());
        // The insets of SciJava's Swing widgets (3 px above and below; its choice lists end 6 px short).
        panel.setBorder(BorderFactory.createEmptyBorder(3, 0, 3, 6));
        combo = new JComboBox<>(choices.toArray(new String[0]));
        String description = model.getItem().getDescription();
        if (description != null && !description.isEmpty()) combo.setToolTipText(description);
        panel.add(combo, BorderLayout.CENTER);
        combo.addActionListener(e -> updateModel());
        refreshWidget();
    }

    @Override
    public String getValue() {
        Object selected = combo.getSelectedItem();
        return selected == null ? null : selected.toString();
    }

    @Override
    protected void doRefresh() {
        Object value = get().getValue();
        if (value != null && !value.equals(combo.getSelectedItem())) combo.setSelectedItem(value);
    }

    @Override
    public JPanel getComponent() {
        return panel;
    }

    @Override
    public Class<JPanel> getComponentType() {
        return JPanel.class;
    }

    @Override
    protected UserInterface ui() {
        return ui("swing");
    }
}
