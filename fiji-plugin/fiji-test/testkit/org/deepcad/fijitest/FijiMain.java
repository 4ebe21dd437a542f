package org.deepcad.fijitest;

/**
 * The test runtime's main class: what Fiji's launcher starts (net.imagej.Main, from the
 * net.imagej:imagej jar the vendored stack lacks) does exactly this: build a full SciJava context
 * and hand it the command line ({@code --headless}, {@code -macro}, {@code --run}, …), which
 * imagej-legacy's console argument plugins and the UI service then act on.
 */
public final class FijiMain {
    private FijiMain() {}

    public static void main(String... args) {
        new org.scijava.SciJava().launch(args);
    }
}
