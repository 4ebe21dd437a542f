//! `deepcad score`: every quality number of denoised movies in one table (and JSON), so the
//! evaluation harness and users with their own data measure the same way.

use std::path::{Path, PathBuf};

use deepcad::evaluation::{
    best_baseline, footprints_from_labels, residual_checks, score, BaselineFamily, Criterion, ResidualChecks,
    Scorecard, EVENT_LOSS_POOL,
};
use deepcad::evaluation::{detail_retention, DetailRetention};
use deepcad::io::{check_outputs, read_stack, write_file_atomically, OutputForm, ReadOptions, StackInfo};
use deepcad::progress::{report, Event, Progress};
use deepcad::{Error, Result};
use serde::Serialize;

use crate::args::ScoreArgs;

#[derive(Serialize)]
struct Entry {
    name: String,
    /// The file scored, or the baseline's setting.
    source: String,
    scores: Option<Scorecard>,
    /// Reference-free checks of `raw − output` (none for the raw movie itself).
    residual: Option<ResidualChecks>,
    /// How much of the raw movie's temporally stable fine detail the output kept (none for the raw movie).
    detail_retention: Option<DetailRetention>,
}

#[derive(Serialize)]
struct Report {
    /// How fast the raw movie's events decay (`infer::event_timescale`).
    event_timescale: deepcad::infer::event_timescale::EventTimescale,
    raw: PathBuf,
    truth: Option<PathBuf>,
    labels: Option<PathBuf>,
    width: usize,
    height: usize,
    frames: usize,
    entries: Vec<Entry>,
}

pub fn run(a: ScoreArgs, progress: &mut dyn Progress) -> Result<()> {
    if let Some(json) = &a.json {
        // Before any scoring: the report never lands on a movie it scores or replaces a file unasked.
        let mut inputs: Vec<PathBuf> = vec![a.raw.clone()];
        inputs.extend(a.truth.iter().chain(a.labels.iter()).cloned());
        inputs.extend(a.outputs.iter().map(|spec| named_output(spec).1));
        check_outputs(&[(json, OutputForm::File)], &inputs, a.overwrite)?;
    }
    let (info, raw) = read_stack(&a.raw, &ReadOptions::default())?;
    let (width, height) = (info.width, info.height);
    let truth = a.truth.as_deref().map(|path| read_matching(path, &info, "ground truth")).transpose()?;
    let neurons = match &a.labels {
        Some(path) => {
            let (label_info, labels) = read_stack(path, &ReadOptions::default())?;
            if (label_info.width, label_info.height, label_info.frames) != (width, height, 1) {
                return Err(Error::usage(format!(
                    "{}: the label image is {}×{}×{} but must be one {width}×{height} frame like {}",
                    path.display(),
                    label_info.width,
                    label_info.height,
                    label_info.frames,
                    a.raw.display()
                )));
            }
            footprints_from_labels(&labels, width, height)
                .map_err(|e| Error::usage(format!("{}: {e}", path.display())))?
        }
        None => Vec::new(),
    };
    if a.baselines && truth.is_none() {
        return Err(Error::usage(
            "--baselines picks each baseline's best width against the ground truth; give --truth too",
        ));
    }

    let mut entries = Vec::new();
    // `checked`: run the residual checks (not for the raw movie, whose residual is zero).
    let mut add =
        |name: String, source: String, movie: &[f32], checked: bool, progress: &mut dyn Progress| -> Result<()> {
            report(progress, Event::Info(&format!("scoring {name}")))?;
            let scores = truth.as_deref().map(|t| score(movie, t, width, height, &neurons)).transpose()?;
            let residual =
                if checked { Some(residual_checks(&raw, movie, width, height, a.held_out_from)?) } else { None };
            let detail_retention = if checked { Some(detail_retention(&raw, movie, width, height)?) } else { None };
            entries.push(Entry { name, source, scores, residual, detail_retention });
            Ok(())
        };
    if truth.is_some() {
        add("raw".into(), a.raw.display().to_string(), &raw, false, progress)?;
    }
    if let Some(truth) = truth.as_deref().filter(|_| a.baselines) {
        for family in BaselineFamily::ALL {
            let baseline = best_baseline(&raw, truth, width, height, family, Criterion::Snr)?;
            add(family.entry_name().into(), baseline.kind.describe(), &baseline.movie, true, progress)?;
            if !neurons.is_empty() {
                // The same family at its best width for neuron traces (often wider in time).
                let baseline =
                    best_baseline(&raw, truth, width, height, family, Criterion::TraceCorrelation(&neurons))?;
                let name = format!("{}_for_traces", family.entry_name());
                add(name, baseline.kind.describe(), &baseline.movie, true, progress)?;
            }
        }
    }
    for spec in &a.outputs {
        let (name, path) = named_output(spec);
        let movie = read_matching(&path, &info, "denoised movie")?;
        add(name, path.display().to_string(), &movie, true, progress)?;
    }

    print_table(&entries, truth.is_some());
    print_detail_retention(&entries);
    // Whether the raw movie's events are brief enough for denoising to lose them: a warning that
    // needs no ground truth, and what `denoise` does about it by default.
    let event_timescale = deepcad::infer::event_timescale::measure(
        deepcad::io::open_movie(&a.raw, &ReadOptions::default())?.source.as_mut(),
    )?;
    println!("raw movie, denoised by default: {}", deepcad::infer::restoration_choice::explain(event_timescale));
    if let Some(path) = &a.json {
        let report = Report {
            event_timescale,
            raw: a.raw.clone(),
            truth: a.truth.clone(),
            labels: a.labels.clone(),
            width,
            height,
            frames: info.frames,
            entries,
        };
        let text = serde_json::to_string_pretty(&report).map_err(|e| Error::usage(format!("scores as JSON: {e}")))?;
        write_file_atomically(path, text.as_bytes())?;
    }
    Ok(())
}

/// `NAME=FILE`, or `FILE` named by its stem.
fn named_output(spec: &str) -> (String, PathBuf) {
    match spec.split_once('=') {
        Some((name, path)) if !name.is_empty() => (name.to_string(), PathBuf::from(path)),
        _ => {
            let path = PathBuf::from(spec);
            (path.file_stem().map_or(spec.to_string(), |s| s.to_string_lossy().into_owned()), path)
        }
    }
}

/// Reads a movie that must have the raw movie's size.
fn read_matching(path: &Path, raw: &StackInfo, role: &str) -> Result<Vec<f32>> {
    let (info, movie) = read_stack(path, &ReadOptions::default())?;
    if (info.width, info.height, info.frames) != (raw.width, raw.height, raw.frames) {
        return Err(Error::usage(format!(
            "{}: this {role} is {}×{}×{} (x×y×t) but the raw movie {} is {}×{}×{}; score outputs of that movie only",
            path.display(),
            info.width,
            info.height,
            info.frames,
            raw.path.display(),
            raw.width,
            raw.height,
            raw.frames
        )));
    }
    Ok(movie)
}

fn print_table(entries: &[Entry], with_truth: bool) {
    let name_width = entries.iter().map(|e| e.name.chars().count()).max().unwrap_or(4).max(4);
    if with_truth {
        println!(
            "{:<name_width$}  {:>8}  {:>8}  {:>8}  {:>6}  {:>6}  {:>8}   source",
            "name", "SNR dB", "invSNR", "PSNR", "SSIM", "r", "trace r"
        );
        for e in entries {
            let s = e.scores.as_ref().expect("scored against the truth");
            let trace = s.trace_correlation_median.map_or("-".into(), |r| format!("{r:.3}"));
            println!(
                "{:<name_width$}  {:>8.2}  {:>8.2}  {:>8.2}  {:>6.3}  {:>6.3}  {:>8}   {}",
                e.name, s.snr_db, s.invariant_snr_db, s.psnr_db, s.ssim, s.pearson, trace, e.source
            );
        }
        println!();
    }
    println!(
        "{:<name_width$}  {:>9}  {:>10}  {:>10}  {:>10}  {:>9}  {:>10}",
        "name", "resid lag1", "noise gain", "noise floor", "var~I r", "held-out", "event loss"
    );
    for e in entries {
        let Some(r) = &e.residual else { continue };
        let held = r.held_out.as_ref().map_or("-".into(), |h| format!("{:.3}", h.ratio));
        let lost = r.event_loss.fast_event_loss.map_or("-".into(), |l| format!("{l:.3}"));
        println!(
            "{:<name_width$}  {:>9.3}  {:>10.3}  {:>10.2}  {:>10.3}  {:>9}  {:>10}",
            e.name, r.lag1_autocorrelation, r.noise_gain, r.noise_floor, r.variance_intensity_correlation, held, lost
        );
    }
    if entries.iter().any(|e| e.residual.is_some()) {
        println!(
            "event loss: share of the raw movie's fast, cell-sized transients (shared by the pixels of {EVENT_LOSS_POOL}×{EVENT_LOSS_POOL} boxes, gone by the next frame) left in raw − output; near 0: events kept, towards 1: smoothed away, above 1: the output adds fast content of its own"
        );
    }
}

fn print_detail_retention(entries: &[Entry]) {
    let scored: Vec<_> = entries.iter().filter_map(|e| Some((&e.name, e.detail_retention.as_ref()?))).collect();
    if scored.is_empty() {
        return;
    }
    let name_width = scored.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(4).max(4);
    let headers: Vec<String> = scored[0].1.scales.iter().map(|s| format!("σ {} px", s.sigma_px)).collect();
    println!("\n{:<name_width$}  {:>9}", "name", "detail kept (fine → coarse)");
    println!("{:<name_width$}  {}", "", headers.iter().map(|h| format!("{h:>9}")).collect::<Vec<_>>().join(" "));
    for (name, d) in scored {
        let cells: Vec<String> = d
            .scales
            .iter()
            .map(|s| s.retention.map_or("-".into(), |r| format!("{r:.3}")))
            .map(|c| format!("{c:>9}"))
            .collect();
        println!("{name:<name_width$}  {}", cells.join(" "));
    }
    println!(
        "detail kept: the raw movie's temporally stable detail in one-octave bands around σ = 1, 2, 4 px that the output keeps (its first half's mean against the raw second half's, and the reverse); ≈1 kept, lower: structure smoothed away, '-': too little stable detail to measure"
    );
}
