package org.deepcad.fiji;

/**
 * Frames handed to the engine one at a time, on demand: {@link #plane(int)} is called from the
 * thread that called {@link DeepCadNative#denoiseToFile}, in roughly increasing order of
 * {@code t} (a frame near a time-block border may be asked for again). For a virtual stack this
 * reads the plane from disk only then, so the movie is never held whole.
 */
public interface PlaneSource {
    /** Frame {@code t} (0-based): a {@code byte[]}, {@code short[]} or {@code float[]} of width*height samples. */
    Object plane(int t);
}
