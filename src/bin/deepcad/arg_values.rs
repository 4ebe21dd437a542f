//! How the command line's option values are read: sizes (1G, 512M, auto), durations (15m),
//! `t,y,x` triples, block numbers `I/N`, and a settings enum's words from the engine's vocabulary.
//! Each returns a message that quotes what was typed.

use deepcad::vocabulary::Vocabulary;

pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("'{text}' is not a duration such as 15m, 1h30m or 900s ({e})"))?;
    if duration.is_zero() {
        return Err(format!("'{text}' must be longer than zero"));
    }
    Ok(duration)
}

/// `I/N` with I < N.
pub fn parse_block(text: &str) -> Result<(usize, usize), String> {
    let (i, n) =
        text.split_once('/').ok_or_else(|| format!("'{text}' is not I/N (block I of N, counting from 0), e.g. 0/4"))?;
    let parse = |v: &str| v.trim().parse::<usize>().map_err(|_| format!("'{v}' in '{text}' is not a whole number"));
    let (i, n) = (parse(i)?, parse(n)?);
    if n == 0 || i >= n {
        return Err(format!("block {i} of {n} does not exist: I counts from 0 to N-1"));
    }
    Ok((i, n))
}

pub fn parse_triple(text: &str) -> Result<[usize; 3], String> {
    let values: Vec<usize> = text
        .split(',')
        .map(|v| v.trim().parse::<usize>().map_err(|_| format!("'{v}' is not a whole number")))
        .collect::<Result<_, _>>()?;
    values.try_into().map_err(|_| "expected three numbers t,y,x such as 208,160,160".to_string())
}

/// `auto` (the machine's default budget, `deepcad::device::machine_memory_budget`) or a size.
pub fn parse_memory_budget(text: &str) -> Result<usize, String> {
    if text.trim().eq_ignore_ascii_case("auto") {
        return Ok(deepcad::device::machine_memory_budget());
    }
    parse_bytes(text)
}

fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_uppercase();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t.as_str(), ""),
    };
    let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a size such as 1G or 512M"))?;
    let multiplier = match unit {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("unknown unit '{unit}' in '{text}'; use K, M or G")),
    };
    if value <= 0.0 {
        return Err(format!("'{text}' must be positive"));
    }
    Ok((value * multiplier) as usize)
}

/// A settings enum's words (the engine's one vocabulary) as the flag's possible values.
pub fn words<T: Vocabulary + Clone + Send + Sync>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(T::words()).map(|word| T::from_word(&word).expect("one of its words"))
}
