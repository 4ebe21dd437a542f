//! `deepcad`: the command-line door. Parses flags, shows progress, calls the same engine functions
//! the Fiji plugin calls, and maps errors to exit codes (0 ok, 1 failure, 2 bad usage, 3 blocks
//! missing or movies different, 130 cancelled).

mod archive;
mod arg_values;
mod args;
mod block_jobs;
mod demo;
mod follow;
mod progress_bar;
mod score;
mod simulate_args;

use std::process::ExitCode;

use clap::Parser;
use deepcad::infer::{DenoiseSettings, OutputType};
use deepcad::io::ReadOptions;
use deepcad::model::Model;
use deepcad::progress::{report, CancelFlag, Event, Progress};
use deepcad::simulate::{write_simulation, SimulationConfig, SimulationFiles};
use deepcad::train::{open_training_inputs, TrainSettings};
use deepcad::{Error, Result};

use args::{Cli, Command, Compute, DenoiseArgs, ExportBioimageioArgs, ImportArgs, InfoArgs, SimulateArgs, TrainArgs};
use progress_bar::TerminalProgress;

fn main() -> ExitCode {
    // Like other Unix tools: `deepcad info --json | head` ends quietly when the reader goes away,
    // instead of panicking on a broken pipe (Rust ignores SIGPIPE by default).
    // SAFETY: called before any thread exists; restores the default disposition of one signal.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    if cli.command.writes_files() {
        // Its messages are not its output: a reader of stderr going away must not kill a run that
        // is writing files (it would leave its partial files behind); see progress_bar::say.
        // SAFETY: called before any thread exists; sets the disposition of one signal.
        #[cfg(unix)]
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
    // DEEPCAD_UNTUNED_ALLOCATOR=1 leaves glibc's allocator as a host process (Fiji's JVM) has it,
    // to measure the library as it runs there.
    if std::env::var_os("DEEPCAD_UNTUNED_ALLOCATOR").is_none() {
        deepcad::device::tune_allocator_for_throughput();
    }
    let cancel = CancelFlag::new();
    {
        let cancel = cancel.clone();
        // Ctrl-C, SIGTERM (what SLURM sends at a time limit) and SIGHUP stop at the next safe point
        // (training keeps its last finished epoch); a second one while we wind down exits at once.
        let _ = ctrlc::set_handler(move || {
            if cancel.is_cancelled() {
                // `_exit`, not `exit`: running libtorch's static destructors while its threads
                // still compute crashes (SIGSEGV). Unfinished outputs stay under hidden names.
                // SAFETY: ends the process at once; nothing of ours runs after it.
                unsafe { libc::_exit(130) };
            }
            // A signal often means the terminal or ssh session is gone: from now on a message
            // to a vanished reader is dropped instead of killing the run before it cleans up.
            // SAFETY: sets the disposition of one signal; no handler of ours is involved.
            #[cfg(unix)]
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            progress_bar::say("deepcad: stopping at the next safe point (Ctrl-C or SIGTERM again to abort)");
            cancel.cancel();
        });
    }
    let mut progress = TerminalProgress::new(cancel, cli.quiet);
    // `None`: the command's own success; `Some(code)`: it chose its exit code (status, compare).
    let done = |r: Result<()>| r.map(|()| None);
    let outcome: Result<Option<ExitCode>> = match cli.command {
        Command::Train(a) => done(train(a, &mut progress)),
        Command::Denoise(a) => done(denoise(a, &mut progress)),
        Command::Info(a) => done(info(a)),
        Command::Simulate(a) => done(simulate(a, &mut progress)),
        Command::Import(a) => done(import(a, &mut progress)),
        Command::ExportBioimageio(a) => done(export_bioimageio(a, &mut progress)),
        Command::Demo(a) => done(demo::run(a, &mut progress)),
        Command::Score(a) => done(score::run(a, &mut progress)),
        Command::Convert(a) => done(archive::convert(a, &mut progress)),
        Command::Status(a) => block_jobs::status(a).map(Some),
        Command::Compare(a) => archive::compare(a).map(Some),
    };
    drop(progress);
    match outcome {
        Ok(Some(code)) => code,
        Ok(None) => ExitCode::SUCCESS,
        Err(Error::Cancelled) => {
            progress_bar::say("deepcad: cancelled");
            ExitCode::from(130)
        }
        Err(e) => {
            progress_bar::say(&format!("deepcad: error: {e}"));
            ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
        }
    }
}

/// Applies --threads and --device, and says which device was chosen.
pub fn setup_compute(compute: &Compute, progress: &mut dyn Progress) -> Result<tch::Device> {
    if let Some(n) = compute.threads {
        let n = deepcad::device::checked_thread_count(n).map_err(|e| Error::usage(format!("--threads: {e}")))?;
        tch::set_num_threads(n);
    }
    let device = deepcad::device::parse_device(&compute.device)?;
    let mut line = format!("device {}", deepcad::device::device_name(device));
    if compute.device == "auto" && device == tch::Device::Cpu {
        if let Some(reason) = deepcad::device::cuda_unavailable_reason() {
            line.push_str(&format!(" (no CUDA: {reason})"));
        }
    }
    report(progress, Event::Info(&line))?;
    Ok(device)
}

fn train(a: TrainArgs, progress: &mut dyn Progress) -> Result<()> {
    let device = setup_compute(&a.compute, progress)?;
    let settings = TrainSettings {
        patch: [a.patch_t, a.patch_xy, a.patch_xy],
        overlap: a.overlap,
        patches_per_epoch: a.patches_per_epoch,
        // With only a time budget, the budget decides when to stop.
        epochs: a.epochs.unwrap_or(if a.time_budget.is_some() {
            deepcad::train::EPOCHS_UNTIL_TIME_BUDGET
        } else {
            deepcad::train::TrainSettings::default().epochs
        }),
        time_budget_seconds: a.time_budget.map(|d| d.as_secs_f64()),
        learning_rate: a.learning_rate,
        batch_size: a.batch_size,
        base_width: a.base_width,
        validation_fraction: a.validation,
        seed: a.seed,
        max_frames: a.max_frames,
        precision: a.precision,
        loss: a.loss,
        schedule: a.schedule,
        normalization: a.normalization,
        init: a.init,
        method: a.method,
        overwrite: a.overwrite,
        origin: deepcad::train::CLI_ORIGIN.to_string(),
    };
    settings.validate()?;
    let mut sources = open_training_inputs(&a.input, progress)?;
    let result = deepcad::train::train(&mut sources, &settings, &a.output, a.resume.as_deref(), device, progress)?;
    report(
        progress,
        Event::Info(&format!(
            "trained {} epochs; model {} (best epoch {})",
            result.epochs_completed,
            result.bundle.display(),
            result.best_epoch.map_or("-".to_string(), |e| e.to_string())
        )),
    )
}

fn denoise(a: DenoiseArgs, progress: &mut dyn Progress) -> Result<()> {
    let device = setup_compute(&a.compute, progress)?;
    use deepcad::infer::official_pipeline::CompatSettings;
    let model = Model::load(&a.model, device)?;
    if a.model.as_os_str() == deepcad::model::BUILT_IN_MODEL {
        let hint = deepcad::model::built_in::BUILT_IN_MODEL_HINT;
        report(progress, Event::Info(&format!("note: {hint} (deepcad train MOVIE --time-budget 5m)")))?;
    }
    let settings = DenoiseSettings {
        tile: a.tile,
        batch_size: a.batch_size,
        output_type: if a.float32 { OutputType::Float32 } else { a.output_type },
        max_memory_bytes: a.max_memory,
        precision: a.precision,
        compat: match a.compat {
            Some(pipeline) => Some(CompatSettings::new(pipeline, a.patch, a.overlap, a.gap)?),
            None => None,
        },
        overwrite: a.overwrite,
        tensor_pool: a.tensor_pool,
        restore_events: a.restore_events,
        ..Default::default()
    };
    if a.follow {
        return follow::follow(&a, model, settings, progress);
    }
    if a.block.is_some() || a.blocks.is_some() {
        return block_jobs::denoise_blocks(&a, &model, &settings, progress);
    }
    let read_options = ReadOptions { channel: a.channel, slice: a.slice };
    let plan =
        deepcad::infer::plan_batch(&a.inputs, &a.output, &a.suffix, std::slice::from_ref(&a.model), a.overwrite)?;
    deepcad::infer::denoise_batch(&model, &plan, &read_options, &settings, progress)?.require_all(&a.output)?;
    Ok(())
}

fn info(a: InfoArgs) -> Result<()> {
    if a.devices || a.model.is_none() {
        println!("{}", deepcad::device::describe_devices());
        if a.model.is_none() {
            return Ok(());
        }
    }
    let path = a.model.expect("checked above");
    let meta = Model::read_validated_metadata(&path)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&meta).map_err(|e| Error::Usage(e.to_string()))?);
        return Ok(());
    }
    println!("model:          {}", path.display());
    println!("format:         {} v{} ({})", meta.architecture, meta.format_version, meta.training.software);
    println!("method:         {}", meta.method);
    println!("base width:     {} ({} parameters)", meta.base_width, meta.parameters);
    println!("patch [t,y,x]:  {:?}", meta.patch);
    println!("halo [t,y,x]:   {:?}", meta.halo);
    println!("normalisation:  {}", serde_json::to_string(&meta.normalization).unwrap_or_default());
    println!("origin:         {}", meta.training.origin);
    println!(
        "epochs:         {} (best {})",
        meta.training.epochs_completed,
        meta.training.best_epoch.map_or("-".into(), |e| e.to_string())
    );
    for e in &meta.training.history {
        println!(
            "  epoch {:>3}: train {:.5}  validation {:.5}  {:.1} s",
            e.epoch, e.train_loss, e.validation_loss, e.seconds
        );
    }
    for s in &meta.training.sources {
        println!("source:         {} ({}×{}, {} frames, {})", s.path, s.width, s.height, s.frames, s.sample_type);
    }
    Ok(())
}

fn import(a: ImportArgs, progress: &mut dyn Progress) -> Result<()> {
    use deepcad::model::import::import_reference_checkpoint_as;
    let convention = a.normalization;
    // The checkpoint and the para.yaml read with it (given, or the one beside it).
    let mut inputs = vec![a.checkpoint.clone(), a.checkpoint.with_file_name("para.yaml")];
    inputs.extend(a.params.clone());
    deepcad::io::check_outputs(&[(&a.output, deepcad::io::OutputForm::File)], &inputs, a.overwrite)?;
    let model = import_reference_checkpoint_as(&a.checkpoint, a.params.as_deref(), convention, tch::Device::Cpu)?;
    model.save(&a.output)?;
    report(
        progress,
        Event::Info(&format!(
            "wrote {} (base width {}, {})",
            a.output.display(),
            model.metadata.base_width,
            model.metadata.training.origin
        )),
    )
}

fn export_bioimageio(a: ExportBioimageioArgs, progress: &mut dyn Progress) -> Result<()> {
    use deepcad::model::export_bioimageio::{self as bioimageio, ExportOptions, TemporalAxis, TestMovie};
    // CPU on purpose: the traced TorchScript must hold CPU tensors to load everywhere.
    let model = Model::load(&a.model, tch::Device::Cpu)?;
    let test_input = match &a.test_input {
        Some(path) => Some(TestMovie::from_tiff(path, bioimageio::package_minimum_size(&model))?),
        None => None,
    };
    let options = ExportOptions {
        name: a.name,
        description: None,
        authors: a.authors,
        license: Some(a.license),
        temporal_axis: if a.time_as_z { TemporalAxis::Z } else { TemporalAxis::Time },
        test_input,
        overwrite: a.overwrite,
        protected: [Some(a.model.clone()), a.test_input.clone()].into_iter().flatten().collect(),
    };
    report(progress, Event::Info("tracing the network and computing the test output"))?;
    let r = bioimageio::export_bioimageio(&model, &a.output, &options)?;
    report(progress, Event::Info(&format!(
        "wrote {} ({} files + rdf.yaml); TorchScript reproduces the engine within {:.1e} (relative) on a {:?} test input; inputs: multiples of 8, at least {:?} (t, y, x); halo {:?}",
        r.output.display(), r.files.len(), r.max_relative_difference, r.test_shape, r.min_size, r.halo
    )))
}

fn simulate(a: SimulateArgs, progress: &mut dyn Progress) -> Result<()> {
    use deepcad::simulate::{ONE_PHOTON_BACKGROUND, ONE_PHOTON_NEUROPIL};
    // --one-photon only changes the strengths' defaults: explicit --background/--neuropil win.
    let (background, neuropil) = if a.one_photon { (ONE_PHOTON_BACKGROUND, ONE_PHOTON_NEUROPIL) } else { (1.0, 1.0) };
    let config = SimulationConfig {
        width: a.width,
        height: a.height,
        frames: a.frames,
        neurons: a.neurons,
        photons: a.photons,
        frame_rate_hz: a.frame_rate,
        gain: a.gain,
        offset: a.offset,
        read_noise: a.read_noise,
        seed: a.seed,
        indicator: a.indicator,
        firing_rate_hz: a.firing_rate,
        background: a.background.unwrap_or(background),
        neuropil: a.neuropil.unwrap_or(neuropil),
        realism: a.realism(),
    };
    let files = SimulationFiles {
        noisy: &a.output,
        truth: a.truth.as_deref(),
        labels: a.labels.as_deref(),
        spikes: a.spikes.as_deref(),
        overwrite: a.overwrite,
    };
    write_simulation(&config, &files, progress)?;
    report(progress, Event::Info(&format!("wrote {}", a.output.display())))
}
