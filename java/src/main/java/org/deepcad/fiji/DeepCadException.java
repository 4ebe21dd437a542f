package org.deepcad.fiji;

/**
 * Every failure of the DeepCAD engine or of loading it, with the engine's error kind so callers
 * can react without parsing messages. Kinds: the engine's {@code format}, {@code unsupported},
 * {@code usage}, {@code limits}, {@code model}, {@code io}, {@code torch}, {@code cancelled}, plus
 * {@code library} (the native library could not be loaded) and {@code internal} (a bug: please report).
 */
public class DeepCadException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String kind;

    /** Called from native code: keep this constructor's signature stable. */
    public DeepCadException(String kind, String message) {
        super(message);
        this.kind = kind;
    }

    public DeepCadException(String kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public static DeepCadException usage(String message) {
        return new DeepCadException("usage", message);
    }

    public String kind() {
        return kind;
    }

    public boolean isCancelled() {
        return "cancelled".equals(kind);
    }
}
