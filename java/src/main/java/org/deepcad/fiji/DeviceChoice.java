package org.deepcad.fiji;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The device a command computes on, as the dialogs offer it: a choice list of what this machine has
 * (Automatic, CPU, then one entry per CUDA device the engine found, e.g. "cuda:0 (NVIDIA H100 80GB
 * HBM3)"), from {@link DeepCadNative#devicesJson()}. A device input is a text parameter with
 * {@code style = }{@link #STYLE}, which {@link DeviceWidget} shows as that list: SciJava's own choice
 * lists are fixed in the annotation, and only a DynamicCommand could change them per run, at the price
 * of {@code CommandService.run(...)} handing scripts {@code null} instead of the finished module.
 *
 * <p>Macros stay replayable on any machine: a recorded "cuda:1 (NVIDIA ...)" means cuda:1 whatever the
 * card's name, and the engine's own spellings that older macros pass ({@code device=auto}, {@code cpu},
 * {@code cuda}, {@code cuda:0}) are read as before, with any case. A device this machine lacks is handed
 * to the engine, which says why it cannot be used.
 */
public final class DeviceChoice {
    public static final String AUTOMATIC = "Automatic";
    public static final String CPU = "CPU";
    /** The widget style of a device input ({@link DeviceWidget}). */
    public static final String STYLE = "deepcad-device";
    /** The device input's help text, the same in every command that has one. */
    public static final String DESCRIPTION = "Automatic: the first CUDA GPU when usable, else the CPU. The list holds "
            + "this machine's devices; unset, the device saved in DeepCAD settings";

    private static final Pattern CUDA = Pattern.compile("^(cuda:\\d+)(?:\\s*\\(.*\\))?$", Pattern.CASE_INSENSITIVE);
    private static final Pattern DESCRIBED = Pattern.compile("^(cuda:\\d+): ([^,]+),");

    private DeviceChoice() {}

    /** Automatic, CPU, and "cuda:N (name)" for each CUDA device in the engine's device list. */
    public static List<String> choices(String devicesJson) {
        JsonObject devices = JsonParser.parseString(devicesJson).getAsJsonObject();
        List<String> choices = new ArrayList<>();
        choices.add(AUTOMATIC);
        choices.add(CPU);
        String description =
                devices.has("description") ? devices.get("description").getAsString() : "";
        for (JsonElement device : devices.getAsJsonArray("devices")) {
            String name = device.getAsString();
            if (!name.startsWith("cuda:")) continue;
            String label = name;
            for (String line : description.split("\n")) {
                Matcher m = DESCRIBED.matcher(line.trim());
                if (m.find() && m.group(1).equals(name))
                    label = name + " (" + m.group(2).trim() + ")";
            }
            choices.add(label);
        }
        return choices;
    }

    /**
     * The engine's name for a choice or an older macro's value: "auto", "cpu", "cuda" or "cuda:N"; null
     * for blank or "default" (the device saved in DeepCAD settings). Anything else is returned as it is,
     * for the engine to refuse with its own message.
     */
    public static String engineName(String choice) {
        if (choice == null) return null;
        String text = choice.trim();
        if (text.isEmpty() || text.equalsIgnoreCase("default")) return null;
        if (text.equalsIgnoreCase(AUTOMATIC) || text.equalsIgnoreCase("auto")) return "auto";
        if (text.equalsIgnoreCase(CPU)) return "cpu";
        Matcher m = CUDA.matcher(text);
        if (m.matches()) return m.group(1).toLowerCase(Locale.ROOT);
        if (text.equalsIgnoreCase("cuda") || text.equalsIgnoreCase("gpu")) return "cuda";
        return text;
    }

    /**
     * The entry of {@code choices} that means the same device as {@code value} (a choice, or an engine
     * name such as "cpu" or "cuda:0"); {@code value} itself when none does.
     */
    public static String label(String value, List<String> choices) {
        String wanted = engineName(value);
        if (wanted == null) return value;
        for (String choice : choices) {
            if (wanted.equals(engineName(choice))) return choice;
        }
        return value.trim();
    }
}
