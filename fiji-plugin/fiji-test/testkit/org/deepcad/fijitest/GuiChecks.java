package org.deepcad.fijitest;

import ij.IJ;
import ij.ImagePlus;
import ij.Menus;
import ij.WindowManager;
import ij.plugin.frame.Recorder;
import ij.process.ImageProcessor;
import java.awt.Menu;
import java.awt.MenuBar;
import java.awt.MenuItem;
import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.scijava.Cancelable;
import org.scijava.command.Command;
import org.scijava.command.CommandInfo;
import org.scijava.command.CommandService;
import org.scijava.module.Module;
import org.scijava.module.ModuleService;
import org.scijava.plugin.Attr;
import org.scijava.plugin.Parameter;
import org.scijava.plugin.Plugin;

/**
 * Test only: the GUI checks, started with {@code --run org.deepcad.fijitest.GuiChecks 'data="…"'}
 * once Fiji's UI is up (under Xvfb). It writes one "name: value" line per finding to
 * {@code <data>/gui-results.txt} and "done" last; fiji-plugin/test-fiji.sh asserts on them, takes the
 * screenshot and stops the process. Not itself recorded ("no-record").
 */
@Plugin(type = Command.class, attrs = @Attr(name = "no-record"))
public class GuiChecks implements Command {
    @Parameter
    private String data;

    @Parameter
    private CommandService commands;

    @Parameter
    private ModuleService modules;

    private PrintWriter results;

    @Override
    public void run() {
        File out = new File(data, "gui-results.txt");
        try (PrintWriter writer =
                new PrintWriter(Files.newBufferedWriter(out.toPath(), StandardCharsets.UTF_8), true)) {
            results = writer;
            try {
                checks();
            } catch (Throwable e) {
                result("error", e.toString().replace('\n', ' '));
                e.printStackTrace();
            }
            result("done", "yes");
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    private void result(String key, String value) {
        results.println(key + ": " + value);
        System.out.println("GUI-CHECK " + key + ": " + value);
    }

    private void checks() throws Exception {
        long deadline = System.currentTimeMillis() + 60_000;
        while ((IJ.getInstance() == null || Menus.getMenuBar() == null) && System.currentTimeMillis() < deadline)
            Thread.sleep(200);
        result("ui", IJ.getInstance() != null ? "ImageJ window up" : "no ImageJ window");
        result("menu", String.join("|", deepCadMenu()));

        result("menu screenshot", openMenuAndShoot(new File(data, "gui-menu.png")));

        ImagePlus movie = IJ.openImage(new File(data, "bright.tif").getPath());
        movie.setTitle("rec movie");
        movie.show();
        deadline = System.currentTimeMillis() + 20_000;
        while (WindowManager.getCurrentImage() != movie && System.currentTimeMillis() < deadline) Thread.sleep(100);

        // The real input dialogs (nobody answers them here): what they offer, then Cancel. Denoise's is
        // a first run (no settings saved): photographed as it opens, with its device list open, after
        // choosing the official tiling, and a model file typed in switches the model to it.
        png = new File(data, "gui-dialog.png");
        result(
                "dialog denoise",
                inspectDialog(
                        "org.deepcad.fiji.commands.DenoiseCommand",
                        "Denoise with DeepCAD model",
                        dialog -> firstRunInteraction(dialog, new File(data, "macro-model.safetensors").getPath())));
        result("dialog train", inspectDialog("org.deepcad.fiji.commands.TrainCommand", "Train DeepCAD model", null));

        Recorder recorder = new Recorder();
        Recorder.record = true;

        String model = new File(data, "macro-model.safetensors").getPath();
        Map<String, Object> denoise = new LinkedHashMap<>();
        denoise.put("model", "Model file");
        denoise.put("model_file", new File(model));
        denoise.put("device", "CPU");
        denoise.put("output_type", "Automatic");
        denoise.put("output_file", "");
        denoise.put("tiling", "Seamless (DeepCAD)");
        denoise.put("official_patch", "150,150,150");
        denoise.put("official_overlap", 0.6);
        denoise.put("restore_events", "Never");
        denoise.put("replace_existing", false);
        ImagePlus first = (ImagePlus)
                clickAndRun("org.deepcad.fiji.commands.DenoiseCommand", denoise).getOutput("output");
        result(
                "denoise output",
                first == null ? "none" : first.getTitle() + " " + first.getBitDepth() + "-bit " + first.getStackSize());
        String line = recordedLine(recorder, "Denoise with DeepCAD model");
        result("recorded denoise", line);

        // The first-run choices as the dialog offers them (built-in model, the Automatic device) with the
        // official tiling: recorded as a replayable line with the official keys (not the heading).
        Map<String, Object> firstRun = new LinkedHashMap<>();
        firstRun.put("model", "Built-in general model");
        firstRun.put("model_file", null);
        firstRun.put("device", "Automatic");
        firstRun.put("output_type", "Automatic");
        firstRun.put("output_file", "");
        firstRun.put("tiling", "DeepCAD-RT official pipeline");
        firstRun.put("official_patch", "32,32,32");
        firstRun.put("official_overlap", 0.5);
        firstRun.put("restore_events", "Automatic");
        firstRun.put("replace_existing", false);
        activate(movie);
        ImagePlus builtIn = (ImagePlus) clickAndRun("org.deepcad.fiji.commands.DenoiseCommand", firstRun)
                .getOutput("output");
        result("first run output", builtIn == null ? "none" : builtIn.getTitle());
        String firstRunLine = recordedLine(recorder, "Denoise with DeepCAD model");
        result("recorded first run", String.valueOf(firstRunLine));

        Map<String, Object> info = new LinkedHashMap<>();
        info.put("model_file", new File(model));
        clickAndRun("org.deepcad.fiji.commands.ModelInfoCommand", info);
        result("recorded info", recordedLine(recorder, "DeepCAD model info"));

        File folder = new File(data, "gui-files");
        folder.mkdirs();
        Map<String, Object> files = new LinkedHashMap<>();
        files.put("input_path", new File(data, "bright.tif"));
        files.put("output_folder", folder);
        files.put("restore_events", "Never");
        files.put("replace_existing", false);
        files.put("model", "Model file");
        files.put("model_file", new File(model));
        files.put("device", "CPU");
        files.put("output_type", "Automatic");
        files.put("channel", 0);
        files.put("slice", 0);
        clickAndRun("org.deepcad.fiji.commands.DenoiseFilesCommand", files);
        String filesLine = recordedLine(recorder, "Denoise files with DeepCAD model");
        result("recorded files", filesLine);

        // Training from the menu on the active movie: the live loss plot (a plain window, one point per
        // finished epoch) and a recorded line.
        activate(movie);
        int imagesBefore = WindowManager.getImageCount();
        Map<String, Object> train = new LinkedHashMap<>();
        train.put("input_path", null);
        train.put("model_file", new File(data, "gui-model.safetensors"));
        train.put("epochs", 2);
        train.put("time_limit_minutes", 0.0);
        train.put("patch_t", 16);
        train.put("patch_xy", 32);
        train.put("base_width", 16);
        train.put("start_from_built_in", true);
        train.put("method", "interlaced");
        train.put("patches_per_epoch", 4);
        train.put("learning_rate", 0.001);
        train.put("device", "CPU");
        train.put("replace_existing", false);
        train.put("resume_from", null);
        clickAndRun("org.deepcad.fiji.commands.TrainCommand", train);
        Thread.sleep(1000); // the plot is drawn on the event thread
        result("train images added", String.valueOf(WindowManager.getImageCount() - imagesBefore));
        result("loss plot points", lossPlotPoints("DeepCAD training loss: gui-model.safetensors"));
        result("recorded train", recordedLine(recorder, "Train DeepCAD model"));
        screenshot("screenshot", new File(data, "gui-screenshot.png"));

        Recorder.record = false;
        if (firstRunLine != null && builtIn != null && !firstRunLine.equals(line)) {
            activate(movie);
            IJ.runMacro(firstRunLine);
            ImagePlus replay = WindowManager.getCurrentImage();
            result("replay first run output", replay == null ? "none" : replay.getTitle());
            result(
                    "replay first run max difference",
                    replay == null || replay == movie || replay == builtIn
                            ? "n/a"
                            : String.valueOf(maxDifference(builtIn, replay)));
        }
        if (line != null && first != null) {
            // Play the recorded line back with the movie active, as a user pasting it into a macro.
            activate(movie);
            int before = WindowManager.getImageCount();
            IJ.runMacro(line);
            ImagePlus replay = WindowManager.getCurrentImage();
            result("replay images added", String.valueOf(WindowManager.getImageCount() - before));
            result(
                    "replay output",
                    replay == null || replay == movie || replay == first
                            ? "none"
                            : replay.getTitle() + " " + replay.getBitDepth() + "-bit " + replay.getStackSize());
            result(
                    "replay max difference",
                    replay == null || replay == movie || replay == first
                            ? "n/a"
                            : String.valueOf(maxDifference(first, replay)));
        }
        // The README's macro line typed in the GUI, optional keys (output_file, replace_existing) left
        // out: it must run to the end without stopping on an input dialog.
        activate(movie);
        int beforeMacro = WindowManager.getImageCount();
        String readme = "run(\"Denoise with DeepCAD model\", \"input=[rec movie] model=[Model file] model_file=["
                + model + "] device=cpu output_type=Automatic\");";
        Thread macro = new Thread(() -> IJ.runMacro(readme), "Run$_gui-macro");
        macro.start();
        macro.join(120_000);
        boolean blocked = macro.isAlive();
        for (java.awt.Window window : java.awt.Window.getWindows()) {
            if (blocked && window instanceof java.awt.Dialog && window.isShowing()) {
                result("dialog left open", ((java.awt.Dialog) window).getTitle());
                window.dispose();
            }
        }
        macro.join(30_000);
        result(
                "gui macro with optional keys omitted",
                blocked
                        ? "stopped on a dialog"
                        : "finished, images added: " + (WindowManager.getImageCount() - beforeMacro));

        // A failure from the menu: where does the user see it?
        Map<String, Object> broken = new LinkedHashMap<>(denoise);
        File absent = new File(data, "absent model.safetensors");
        broken.put("model_file", absent);
        activate(movie);
        try {
            clickAndRun("org.deepcad.fiji.commands.DenoiseCommand", broken);
        } catch (java.util.concurrent.ExecutionException expected) {
            result("ran Denoise with DeepCAD model (absent model)", "failed as expected");
        }
        Thread.sleep(2000);
        result("error shown", findText("DeepCAD: " + absent.getPath()));
        screenshot("error screenshot", new File(data, "gui-error.png"));

        Recorder.record = true;
        int trainLines = countLines(recorder, "Train DeepCAD model");
        cancelTrainingWithEsc(movie, train);
        result("esc cancel recorded lines", String.valueOf(countLines(recorder, "Train DeepCAD model") - trainLines));
        Recorder.record = false;

        if (filesLine != null) {
            File produced = new File(folder, "bright-denoised.tif");
            File copy = new File(data, "gui-files-first.tif");
            Files.move(produced.toPath(), copy.toPath());
            IJ.runMacro(filesLine);
            result("replay files", produced.isFile() ? "written" : "missing");
            if (produced.isFile()) {
                result(
                        "replay files max difference",
                        String.valueOf(maxDifference(IJ.openImage(copy.getPath()), IJ.openImage(produced.getPath()))));
            }
        }
    }

    /**
     * Makes {@code imp} the active image, as a click on its window does. ImageJ activates a newly shown
     * image's window on the event thread, after show() has returned; an activation arriving after
     * setCurrentWindow would hand the next command another image, so wait until the choice holds.
     */
    private static void activate(ImagePlus imp) throws Exception {
        long deadline = System.currentTimeMillis() + 20_000;
        do {
            java.awt.EventQueue.invokeAndWait(() -> {});
            WindowManager.setCurrentWindow(imp.getWindow());
            Thread.sleep(200);
            java.awt.EventQueue.invokeAndWait(() -> {});
        } while (WindowManager.getCurrentImage() != imp && System.currentTimeMillis() < deadline);
    }

    /** What a click on the command's menu item does: the module service runs it with all processing. */
    private Module clickAndRun(String commandClass, Map<String, Object> dialogValues) throws Exception {
        DialogStandIn.answer(commandClass, dialogValues);
        CommandInfo info = commands.getCommand(commandClass);
        Module module = modules.run(info, true).get(300, TimeUnit.SECONDS);
        boolean cancelled = module instanceof Cancelable && ((Cancelable) module).isCanceled();
        result(
                "ran " + info.getMenuPath().getLeaf().getName(),
                cancelled ? "cancelled: " + ((Cancelable) module).getCancelReason() : "ok");
        return module;
    }

    /**
     * A long training started from the menu, cancelled with Esc on the ImageJ window once its first
     * epoch is saved: how fast it stops, how it ends, what the model keeps.
     */
    private void cancelTrainingWithEsc(ImagePlus movie, Map<String, Object> settings) throws Exception {
        File bundle = new File(data, "gui-cancel.safetensors");
        Map<String, Object> values = new LinkedHashMap<>(settings);
        values.put("model_file", bundle);
        values.put("epochs", 100);
        String train = "org.deepcad.fiji.commands.TrainCommand";
        DialogStandIn.answer(train, values);
        activate(movie);
        java.util.concurrent.Future<Module> running = modules.run(commands.getCommand(train), true);
        long deadline = System.currentTimeMillis() + 300_000;
        String status = null;
        while (!bundle.isFile() && !running.isDone() && System.currentTimeMillis() < deadline) {
            String text = ij.ImageJ.getStatusBarText();
            if (text != null && text.startsWith("DeepCAD")) status = text;
            Thread.sleep(50);
        }
        // The first epoch is saved; its status line follows within a moment.
        for (int i = 0; i < 40 && (status == null || !status.contains("epoch")); i++) {
            String text = ij.ImageJ.getStatusBarText();
            if (text != null && text.startsWith("DeepCAD")) status = text;
            Thread.sleep(50);
        }
        result("status bar while training", String.valueOf(status));
        if (!bundle.isFile()) {
            result("esc cancel", "no first epoch within the time limit");
            return;
        }
        // The key event goes straight to the ImageJ window's key handler: under Xvfb without a window
        // manager, X keyboard focus (what a Robot key press needs) is not reliably on any window.
        ij.ImageJ main = IJ.getInstance();
        long pressed = System.currentTimeMillis();
        java.awt.EventQueue.invokeAndWait(() -> main.dispatchEvent(new java.awt.event.KeyEvent(
                main,
                java.awt.event.KeyEvent.KEY_PRESSED,
                System.currentTimeMillis(),
                0,
                java.awt.event.KeyEvent.VK_ESCAPE,
                java.awt.event.KeyEvent.CHAR_UNDEFINED)));
        Module module;
        try {
            module = running.get(120, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            result("esc cancel", "still training 120 s after Esc");
            return;
        }
        double seconds = (System.currentTimeMillis() - pressed) / 1000.0;
        boolean cancelled = module instanceof Cancelable && ((Cancelable) module).isCanceled();
        result("esc cancel", cancelled ? "cancelled: " + ((Cancelable) module).getCancelReason() : "not cancelled");
        result("esc cancel stopped within 30 s", String.valueOf(seconds <= 30) + " (" + seconds + " s)");
        String info = org.deepcad.fiji.DeepCadNative.modelInfoJson(bundle.getPath());
        com.google.gson.JsonObject training =
                com.google.gson.JsonParser.parseString(info).getAsJsonObject().getAsJsonObject("training");
        result("esc cancel kept epochs", training.get("epochs_completed").getAsString());
        IJ.resetEscape();
    }

    /**
     * Runs a command as a menu click does with nobody answering for the user, waits for SciJava's
     * input dialog, reports its field labels, file-chooser buttons, choice and number defaults as
     * "labels=[..] browse=n choices=[..] numbers=[..]", then clicks Cancel and reports how the
     * command ended ("cancelled" expected, and no image added).
     */
    private String inspectDialog(String commandClass, String title, DialogInteraction interaction) throws Exception {
        DialogStandIn.answer(commandClass, null);
        int images = WindowManager.getImageCount();
        java.util.concurrent.Future<Module> running = modules.run(commands.getCommand(commandClass), true);
        javax.swing.JDialog dialog = null;
        long deadline = System.currentTimeMillis() + 60_000;
        while (dialog == null && System.currentTimeMillis() < deadline && !running.isDone()) {
            for (java.awt.Window window : java.awt.Window.getWindows()) {
                if (window instanceof javax.swing.JDialog
                        && window.isShowing()
                        && title.equals(((javax.swing.JDialog) window).getTitle())) {
                    dialog = (javax.swing.JDialog) window;
                }
            }
            Thread.sleep(100);
        }
        if (dialog == null) return "no dialog" + (running.isDone() ? " (the command ran without one)" : "");
        Thread.sleep(500);
        List<String> labels = new ArrayList<>(), choices = new ArrayList<>(), numbers = new ArrayList<>();
        int[] browse = {0};
        javax.swing.JButton[] cancel = {null};
        java.awt.Container root = dialog.getContentPane();
        java.awt.EventQueue.invokeAndWait(() -> walk(root, labels, choices, numbers, browse, cancel));
        if (png != null) screenshot("dialog screenshot", png);
        png = null;
        if (interaction != null) interaction.interact(dialog);
        if (cancel[0] == null) return "no Cancel button";
        java.awt.EventQueue.invokeAndWait(cancel[0]::doClick);
        Module module = running.get(60, TimeUnit.SECONDS);
        boolean cancelled = module instanceof Cancelable && ((Cancelable) module).isCanceled();
        return "labels=" + labels + " browse=" + browse[0] + " choices=" + choices + " numbers=" + numbers
                + " then Cancel: " + (cancelled ? "cancelled" : "ran") + ", images added "
                + (WindowManager.getImageCount() - images);
    }

    private File png;

    /** What a test does in an open dialog before Cancel. */
    private interface DialogInteraction {
        void interact(javax.swing.JDialog dialog) throws Exception;
    }

    /**
     * The first-run Denoise dialog, as a user meets it: every choice list's entries (the device list is
     * what this machine has), the heading over the official pipeline's fields, photographed with the
     * device list open; then the official tiling chosen (the heading says its fields now apply,
     * photographed), and a model file typed into its field (the model choice follows).
     */
    private void firstRunInteraction(javax.swing.JDialog dialog, String modelPath) throws Exception {
        List<javax.swing.JComboBox<?>> combos = new ArrayList<>();
        List<javax.swing.JEditorPane> headings = new ArrayList<>();
        List<javax.swing.JTextField> fields = new ArrayList<>();
        java.awt.EventQueue.invokeAndWait(() -> collect(dialog.getContentPane(), combos, headings, fields));
        List<String> lists = new ArrayList<>();
        javax.swing.JComboBox<?> device = null, tiling = null, model = null;
        for (javax.swing.JComboBox<?> combo : combos) {
            List<String> items = new ArrayList<>();
            for (int i = 0; i < combo.getItemCount(); i++) items.add(String.valueOf(combo.getItemAt(i)));
            lists.add(String.join("|", items));
            if (items.contains("CPU")) device = combo;
            if (items.contains("Seamless (DeepCAD)")) tiling = combo;
            if (items.contains("Built-in general model")) model = combo;
        }
        result("dialog denoise lists", String.join(" / ", lists));
        result("dialog denoise heading", headings.isEmpty() ? "none" : headingText(headings.get(0)));
        if (device != null) {
            javax.swing.JComboBox<?> open = device;
            java.awt.EventQueue.invokeAndWait(() -> open.showPopup());
            Thread.sleep(800);
            screenshot("dialog devices screenshot", new File(data, "gui-dialog-devices.png"));
            java.awt.EventQueue.invokeAndWait(() -> open.hidePopup());
        }
        if (tiling != null && !headings.isEmpty()) {
            javax.swing.JComboBox<?> choose = tiling;
            java.awt.EventQueue.invokeAndWait(() -> choose.setSelectedItem("DeepCAD-RT official pipeline"));
            String heading = "";
            for (int i = 0; i < 50 && !heading.contains("its patch and overlap"); i++) {
                Thread.sleep(100);
                heading = headingText(headings.get(0));
            }
            Thread.sleep(300);
            result("dialog denoise heading official", heading);
            screenshot("dialog official screenshot", new File(data, "gui-dialog-official.png"));
        }
        // The model file's text field: the one beside the only Browse button.
        javax.swing.JTextField file = null;
        for (javax.swing.JTextField field : fields) {
            for (java.awt.Component sibling : field.getParent().getComponents()) {
                if (sibling instanceof javax.swing.JButton
                        && String.valueOf(((javax.swing.JButton) sibling).getText())
                                .startsWith("Browse")) file = field;
            }
        }
        if (file != null && model != null) {
            javax.swing.JTextField typed = file;
            java.awt.EventQueue.invokeAndWait(() -> typed.setText(modelPath));
            String chosen = "";
            for (int i = 0; i < 50 && !"Model file".equals(chosen); i++) {
                Thread.sleep(100);
                chosen = String.valueOf(model.getSelectedItem());
            }
            result("dialog denoise model after typing a file", chosen);
        } else {
            result("dialog denoise model after typing a file", "no model file field or model choice");
        }
    }

    private static String headingText(javax.swing.JEditorPane pane) {
        try {
            javax.swing.text.Document doc = pane.getDocument();
            return doc.getText(0, doc.getLength()).replace('\u00a0', ' ').trim().replaceAll("\\s+", " ");
        } catch (javax.swing.text.BadLocationException e) {
            return "unreadable";
        }
    }

    private static void collect(
            java.awt.Container container,
            List<javax.swing.JComboBox<?>> combos,
            List<javax.swing.JEditorPane> headings,
            List<javax.swing.JTextField> fields) {
        for (java.awt.Component c : container.getComponents()) {
            if (!c.isVisible()) continue;
            if (c instanceof javax.swing.JComboBox) combos.add((javax.swing.JComboBox<?>) c);
            else if (c instanceof javax.swing.JEditorPane) headings.add((javax.swing.JEditorPane) c);
            else if (c instanceof javax.swing.JTextField
                    && !(c.getParent() instanceof javax.swing.JSpinner.DefaultEditor))
                fields.add((javax.swing.JTextField) c);
            if (c instanceof java.awt.Container
                    && !(c instanceof javax.swing.JComboBox)
                    && !(c instanceof javax.swing.JSpinner)) {
                collect((java.awt.Container) c, combos, headings, fields);
            }
        }
    }

    /** "window '<title>'" for the first showing window whose text contains needle, or "nowhere". */
    private static String findText(String needle) throws Exception {
        String[] found = {null};
        java.awt.EventQueue.invokeAndWait(() -> {
            for (java.awt.Window window : java.awt.Window.getWindows()) {
                if (found[0] == null && window.isShowing() && containsText(window, needle)) {
                    String title = window instanceof java.awt.Frame
                            ? ((java.awt.Frame) window).getTitle()
                            : window instanceof java.awt.Dialog
                                    ? ((java.awt.Dialog) window).getTitle()
                                    : window.getName();
                    found[0] = "window '" + title + "'";
                }
            }
        });
        return found[0] == null ? "nowhere" : found[0];
    }

    private static boolean containsText(java.awt.Container container, String needle) {
        for (java.awt.Component c : container.getComponents()) {
            String text = c instanceof javax.swing.text.JTextComponent
                    ? ((javax.swing.text.JTextComponent) c).getText()
                    : c instanceof java.awt.TextComponent
                            ? ((java.awt.TextComponent) c).getText()
                            : c instanceof javax.swing.JLabel ? ((javax.swing.JLabel) c).getText() : null;
            if (text != null && text.contains(needle)) return true;
            if (c instanceof java.awt.Container && containsText((java.awt.Container) c, needle)) return true;
        }
        return false;
    }

    private static void walk(
            java.awt.Container container,
            List<String> labels,
            List<String> choices,
            List<String> numbers,
            int[] browse,
            javax.swing.JButton[] cancel) {
        for (java.awt.Component c : container.getComponents()) {
            if (!c.isVisible()) continue;
            if (c instanceof javax.swing.JLabel
                    && ((javax.swing.JLabel) c).getText() != null
                    && !((javax.swing.JLabel) c).getText().trim().isEmpty())
                labels.add(((javax.swing.JLabel) c).getText().trim());
            else if (c instanceof javax.swing.JComboBox)
                choices.add(String.valueOf(((javax.swing.JComboBox<?>) c).getSelectedItem()));
            else if (c instanceof javax.swing.JSpinner)
                numbers.add(String.valueOf(((javax.swing.JSpinner) c).getValue()));
            else if (c instanceof javax.swing.JButton) {
                String text = ((javax.swing.JButton) c).getText();
                if ("Browse".equals(text) || "Browse...".equals(text)) browse[0]++;
                if ("Cancel".equals(text)) cancel[0] = (javax.swing.JButton) c;
            }
            if (c instanceof java.awt.Container
                    && !(c instanceof javax.swing.JSpinner)
                    && !(c instanceof javax.swing.JComboBox)) {
                walk((java.awt.Container) c, labels, choices, numbers, browse, cancel);
            }
        }
    }

    /** The number of points in the open loss plot window with this title, or "no window". */
    private static String lossPlotPoints(String title) {
        for (java.awt.Frame frame : java.awt.Frame.getFrames()) {
            if (frame.isShowing() && title.equals(frame.getTitle()) && frame instanceof javax.swing.JFrame) {
                Object points = ((javax.swing.JFrame) frame).getRootPane().getClientProperty("deepcad.loss.points");
                return String.valueOf(points);
            }
        }
        return "no window";
    }

    /**
     * Opens Plugins > DeepCAD with the keyboard as a user would (F10 opens the menu bar, arrows walk
     * it), photographs it, and closes it with Escape.
     */
    private String openMenuAndShoot(File png) {
        try {
            ij.ImageJ main = IJ.getInstance();
            java.awt.EventQueue.invokeAndWait(() -> {
                main.setLocation(0, 0);
                main.toFront();
            });
            java.awt.Robot robot = new java.awt.Robot();
            robot.setAutoDelay(80);
            robot.waitForIdle();
            java.awt.Point corner = main.getLocationOnScreen();
            robot.mouseMove(corner.x + main.getWidth() / 2, corner.y + main.getHeight() - 8);
            robot.mousePress(java.awt.event.InputEvent.BUTTON1_DOWN_MASK);
            robot.mouseRelease(java.awt.event.InputEvent.BUTTON1_DOWN_MASK);
            Menu plugins = null;
            int menuIndex = -1;
            MenuBar bar = Menus.getMenuBar();
            for (int m = 0; m < bar.getMenuCount(); m++) {
                if ("Plugins".equals(bar.getMenu(m).getLabel())) {
                    plugins = bar.getMenu(m);
                    menuIndex = m;
                }
            }
            if (plugins == null) return "no Plugins menu";
            int itemIndex = -1, walked = 0;
            for (int i = 0; i < plugins.getItemCount(); i++) {
                MenuItem item = plugins.getItem(i);
                if ("-".equals(item.getLabel()) || !item.isEnabled()) continue;
                if ("DeepCAD".equals(item.getLabel())) {
                    itemIndex = walked;
                    break;
                }
                walked++;
            }
            if (itemIndex < 0) return "no DeepCAD submenu";
            // F10 opens the first menu with its first item selected; Right on a submenu item opens that
            // submenu first, so such menus take two presses to pass.
            int rights = 0;
            for (int m = 0; m < menuIndex; m++) rights += firstItemIsSubmenu(bar.getMenu(m)) ? 2 : 1;
            type(robot, java.awt.event.KeyEvent.VK_F10, 1);
            type(robot, java.awt.event.KeyEvent.VK_RIGHT, rights);
            type(robot, java.awt.event.KeyEvent.VK_DOWN, itemIndex); // the first item starts selected
            type(robot, java.awt.event.KeyEvent.VK_RIGHT, 1);
            Thread.sleep(1500);
            java.awt.Rectangle screen =
                    new java.awt.Rectangle(java.awt.Toolkit.getDefaultToolkit().getScreenSize());
            javax.imageio.ImageIO.write(robot.createScreenCapture(screen), "png", png);
            type(robot, java.awt.event.KeyEvent.VK_ESCAPE, 4);
            return png.getPath();
        } catch (Exception e) {
            return "failed: " + e;
        }
    }

    private static boolean firstItemIsSubmenu(Menu menu) {
        for (int i = 0; i < menu.getItemCount(); i++) {
            MenuItem item = menu.getItem(i);
            if ("-".equals(item.getLabel()) || !item.isEnabled()) continue;
            return item instanceof Menu;
        }
        return false;
    }

    private static void type(java.awt.Robot robot, int key, int times) throws InterruptedException {
        for (int i = 0; i < times; i++) {
            robot.keyPress(key);
            robot.keyRelease(key);
            robot.waitForIdle();
            Thread.sleep(300); // an X menu drops keys that arrive while it is still opening
        }
    }

    private void screenshot(String key, File png) {
        try {
            java.awt.Rectangle screen =
                    new java.awt.Rectangle(java.awt.Toolkit.getDefaultToolkit().getScreenSize());
            javax.imageio.ImageIO.write(new java.awt.Robot().createScreenCapture(screen), "png", png);
            result(key, png.getPath());
        } catch (Exception e) {
            result(key, "failed: " + e);
        }
    }

    private static int countLines(Recorder recorder, String command) {
        int n = 0;
        for (String line : recorder.getText().split("\n")) {
            if (line.startsWith("run(\"" + command + "\"")) n++;
        }
        return n;
    }

    private static String recordedLine(Recorder recorder, String command) {
        String found = null;
        for (String line : recorder.getText().split("\n")) {
            if (line.startsWith("run(\"" + command + "\"")) found = line;
        }
        return found;
    }

    private static List<String> deepCadMenu() {
        List<String> labels = new ArrayList<>();
        MenuBar bar = Menus.getMenuBar();
        for (int m = 0; bar != null && m < bar.getMenuCount(); m++) {
            Menu menu = bar.getMenu(m);
            if (!"Plugins".equals(menu.getLabel())) continue;
            for (int i = 0; i < menu.getItemCount(); i++) {
                MenuItem item = menu.getItem(i);
                if (item instanceof Menu && "DeepCAD".equals(item.getLabel())) {
                    Menu sub = (Menu) item;
                    for (int k = 0; k < sub.getItemCount(); k++)
                        labels.add(sub.getItem(k).getLabel());
                }
            }
        }
        return labels;
    }

    private static double maxDifference(ImagePlus a, ImagePlus b) {
        if (a.getWidth() != b.getWidth() || a.getHeight() != b.getHeight() || a.getStackSize() != b.getStackSize())
            return -1;
        double max = 0;
        for (int s = 1; s <= a.getStackSize(); s++) {
            ImageProcessor pa = a.getStack().getProcessor(s);
            ImageProcessor pb = b.getStack().getProcessor(s);
            for (int i = 0; i < pa.getPixelCount(); i++) max = Math.max(max, Math.abs(pa.getf(i) - pb.getf(i)));
        }
        return max;
    }
}
