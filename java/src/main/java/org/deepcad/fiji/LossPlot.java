package org.deepcad.fiji;

import ij.gui.Plot;
import java.awt.Color;
import java.awt.GraphicsEnvironment;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import javax.swing.ImageIcon;
import javax.swing.JFrame;
import javax.swing.JLabel;
import javax.swing.SwingUtilities;
import javax.swing.WindowConstants;

/**
 * Training and validation loss per epoch, redrawn as epochs finish. ImageJ's Plot draws it, but it
 * is shown in a plain window, not a PlotWindow: a PlotWindow is an image, so it would change
 * {@code nImages}, the active image and image titles in the user's macros while training runs.
 * The window's root pane carries the number of points drawn ({@link #POINTS_PROPERTY}).
 */
public final class LossPlot {
    public static final String POINTS_PROPERTY = "deepcad.loss.points";

    private final String title;
    private final List<double[]> points = new ArrayList<>();
    private JFrame window;
    private JLabel picture;

    private LossPlot(String title) {
        this.title = title;
    }

    /** A plot for a display, or null when there is none (headless Fiji, tests, servers). */
    public static LossPlot createIfDisplayed(String title, boolean headless) {
        if (headless || GraphicsEnvironment.isHeadless()) return null;
        return new LossPlot(title);
    }

    public synchronized void add(int epoch, double trainLoss, double validationLoss) {
        points.add(new double[] {epoch, trainLoss, validationLoss});
        BufferedImage image = build().getProcessor().getBufferedImage();
        int count = points.size();
        SwingUtilities.invokeLater(() -> show(image, count));
    }

    private void show(BufferedImage image, int count) {
        if (window == null || !window.isDisplayable()) {
            window = new JFrame(title);
            window.setDefaultCloseOperation(WindowConstants.DISPOSE_ON_CLOSE);
            picture = new JLabel(new ImageIcon(image));
            window.getContentPane().add(picture);
            window.pack();
            window.setVisible(true);
        } else {
            picture.setIcon(new ImageIcon(image));
        }
        window.getRootPane().putClientProperty(POINTS_PROPERTY, count);
    }

    private Plot build() {
        int n = points.size();
        double[] x = new double[n], train = new double[n], validation = new double[n];
        double top = 0;
        for (int i = 0; i < n; i++) {
            x[i] = points.get(i)[0];
            train[i] = points.get(i)[1];
            validation[i] = points.get(i)[2];
            top = Math.max(top, Math.max(train[i], validation[i]));
        }
        Plot plot = new Plot(title, "epoch", "loss");
        plot.setColor(Color.BLUE);
        plot.add("connected circle", x, train);
        plot.setColor(Color.RED);
        plot.add("connected circle", x, validation);
        plot.setLegend("training\tvalidation", Plot.AUTO_POSITION);
        // Fixed margins: with automatic limits a single epoch's points would sit on the frame.
        plot.setLimits(0, x[n - 1] + 1, 0, top > 0 ? top * 1.15 : 1);
        return plot;
    }
}
