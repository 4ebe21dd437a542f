package org.deepcad.fiji;

import ij.gui.Plot;
import ij.gui.PlotWindow;

import java.awt.Color;
import java.awt.GraphicsEnvironment;
import java.util.ArrayList;
import java.util.List;

/** Training and validation loss per epoch, redrawn in one ImageJ plot window as epochs finish. */
public final class LossPlot {
    private final String title;
    private final List<double[]> points = new ArrayList<>();
    private PlotWindow window;

    private LossPlot(String title) {
        this.title = title;
    }

    /** A plot for a display, or null when there is none (headless Fiji, tests, servers). */
    public static LossPlot createIfDisplayed(String title, boolean headless) {
        if (headless || GraphicsEnvironment.isHeadless()) return null;
        return new LossPlot(title);
    }

    public synchronized void add(int epoch, double trainLoss, double validationLoss) {
        points.add(new double[] { epoch, trainLoss, validationLoss });
        Plot plot = build();
        if (window == null || window.isClosed()) {
            window = plot.show();
        } else {
            window.drawPlot(plot);
        }
    }

    private Plot build() {
        int n = points.size();
        double[] x = new double[n], train = new double[n], validation = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = points.get(i)[0];
            train[i] = points.get(i)[1];
            validation[i] = points.get(i)[2];
        }
        Plot plot = new Plot(title, "epoch", "loss");
        plot.setColor(Color.BLUE);
        plot.add("connected circle", x, train);
        plot.setColor(Color.RED);
        plot.add("connected circle", x, validation);
        plot.setLegend("training\tvalidation", Plot.AUTO_POSITION);
        plot.setLimitsToFit(false);
        return plot;
    }
}
