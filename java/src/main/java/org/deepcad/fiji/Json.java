package org.deepcad.fiji;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads one top-level scalar field of the small, flat JSON objects the engine returns and builds
 * settings objects. Fiji ships no JSON library we may rely on, and we need nothing more.
 */
public final class Json {
    private Json() {}

    /** The field's value as text (strings unescaped), or null when absent. */
    public static String field(String json, String key) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(key)
            + "\"\\s*:\\s*(\"((?:[^\"\\\\]|\\\\.)*)\"|[-+0-9.eE]+|true|false|null)").matcher(json);
        if (!m.find()) return null;
        if (m.group(2) != null) return unescape(m.group(2));
        return m.group(1);
    }

    public static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                default:
                    if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
                    else out.append(c);
            }
        }
        return out.append('"').toString();
    }

    private static String unescape(String text) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c != '\\' || i + 1 >= text.length()) {
                out.append(c);
                continue;
            }
            char e = text.charAt(++i);
            switch (e) {
                case 'n': out.append('\n'); break;
                case 't': out.append('\t'); break;
                case 'r': out.append('\r'); break;
                case 'u':
                    out.append((char) Integer.parseInt(text.substring(i + 1, i + 5), 16));
                    i += 4;
                    break;
                default: out.append(e);
            }
        }
        return out.toString();
    }

    /** Builds {"k": v, ...} from alternating keys and values (Numbers, Booleans or Strings). */
    public static String object(Object... keysAndValues) {
        StringBuilder out = new StringBuilder("{");
        for (int i = 0; i + 1 < keysAndValues.length; i += 2) {
            if (out.length() > 1) out.append(", ");
            out.append(quote(String.valueOf(keysAndValues[i]))).append(": ");
            Object v = keysAndValues[i + 1];
            out.append(v instanceof Number || v instanceof Boolean ? String.valueOf(v) : quote(String.valueOf(v)));
        }
        return out.append('}').toString();
    }
}
