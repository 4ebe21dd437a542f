//! Command-line flags. Parsing only validates shapes of values; the engine checks meaning.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::arg_values::{parse_block, parse_duration, parse_memory_budget, parse_triple, words};
pub use crate::simulate_args::SimulateArgs;

/// The engine's training defaults, which the train command's flags show and start from.
fn train_default() -> deepcad::train::TrainSettings {
    deepcad::train::TrainSettings::default()
}

#[derive(Parser)]
#[command(
    name = "deepcad",
    version,
    about = "Self-supervised denoising of calcium-imaging and other fluorescence time-lapse movies (DeepCAD)",
    long_about = "Self-supervised denoising of calcium-imaging and other fluorescence time-lapse movies.\n\n\
        A 3-D U-Net learns to predict the odd frames of a noisy movie from its even frames, so the\n\
        noisy recording is its own training set. Train once per kind of data, then denoise any number\n\
        of movies with the model bundle (.safetensors).\n\n\
        Quick start:\n  deepcad demo --out demo\n  deepcad train movie.tif -o model.safetensors\n  deepcad denoise movie.tif --model model.safetensors -o movie-denoised.tif",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Only print errors and warnings.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Args, Clone)]
pub struct Compute {
    /// Where to run: auto (CUDA when usable), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a model on one movie or a folder of movies (TIFF).
    Train(TrainArgs),
    /// Denoise movies with a trained model.
    Denoise(DenoiseArgs),
    /// Show what a model bundle holds, or which devices are usable.
    Info(InfoArgs),
    /// Write a simulated two-photon calcium movie with its ground truth.
    Simulate(SimulateArgs),
    /// Convert an official DeepCAD / DeepCAD-RT checkpoint (.pth + para.yaml) into a model bundle.
    Import(ImportArgs),
    /// Write a BioImage Model Zoo package (spec 0.5 rdf.yaml, TorchScript) for deepImageJ / bioimageio.core.
    ExportBioimageio(ExportBioimageioArgs),
    /// Simulate a movie, train briefly, denoise, and report SNR before and after with a picture.
    Demo(DemoArgs),
    /// Score denoised movies: against ground truth (SNR, PSNR, SSIM, correlations, baselines), or
    /// without it (is the removed residual noise-like?).
    Score(ScoreArgs),
    /// Convert a movie between TIFF/BigTIFF and Zarr v3 (sharded, zstd), streaming.
    Convert(ConvertArgs),
    /// Say which blocks of a block-job output (denoise --block i/N) are done.
    Status(StatusArgs),
    /// Compare two movies (TIFF or Zarr) voxel by voxel: exit 0 when identical, 3 when not.
    Compare(CompareArgs),
}

impl Command {
    /// Commands that write files; the others (info, score's table, status, compare) print their
    /// result to standard output.
    pub fn writes_files(&self) -> bool {
        matches!(
            self,
            Command::Train(_)
                | Command::Denoise(_)
                | Command::Simulate(_)
                | Command::Import(_)
                | Command::ExportBioimageio(_)
                | Command::Demo(_)
                | Command::Convert(_)
        )
    }
}

#[derive(Args)]
pub struct TrainArgs {
    /// A TIFF movie or a folder of TIFF movies (other files are skipped with a warning).
    pub input: PathBuf,
    /// Model bundle to write (updated after every epoch; the best also goes to <name>.best.safetensors).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Epochs to train (default 10, or as many as --time-budget allows). With --resume on the same
    /// movies it is the total, so re-running a stopped command finishes that training.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after this much wall-clock time, e.g. 15m, 1h30m, 900s: the epoch under way ends early and
    /// is saved; the best epoch is kept in <name>.best.safetensors as always.
    #[arg(long, value_parser = parse_duration)]
    pub time_budget: Option<std::time::Duration>,
    /// Patch length in time (network input frames; a window spans twice as many raw frames). Multiple of 8.
    #[arg(long, default_value_t = train_default().patch[0])]
    pub patch_t: usize,
    /// Patch width and height in pixels. Multiple of 8.
    #[arg(long, default_value_t = train_default().patch[1])]
    pub patch_xy: usize,
    /// Patch-grid overlap in x/y, in [0, 1).
    #[arg(long, default_value_t = train_default().overlap)]
    pub overlap: f64,
    /// Patches per epoch (approximate; the grid decides the exact count).
    #[arg(long, default_value_t = train_default().patches_per_epoch)]
    pub patches_per_epoch: usize,
    /// Adam learning rate (data are normalised, so one value suits any brightness).
    #[arg(long, default_value_t = train_default().learning_rate)]
    pub learning_rate: f64,
    #[arg(long, default_value_t = train_default().batch_size)]
    pub batch_size: usize,
    /// Base width of the U-Net: 16 = DeepCAD-RT, 64 = DeepCAD.
    #[arg(long, default_value_t = train_default().base_width)]
    pub base_width: usize,
    /// Share of patches held out for the validation loss.
    #[arg(long, default_value_t = train_default().validation_fraction)]
    pub validation: f64,
    #[arg(long, default_value_t = train_default().seed)]
    pub seed: u64,
    /// Use only the first N frames of each movie.
    #[arg(long)]
    pub max_frames: Option<usize>,
    /// Continue training (or fine-tune on new data) from this bundle (it may also be the output);
    /// `default` fine-tunes the built-in general model.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Replace an existing model file at --output (never an input movie).
    #[arg(long)]
    pub overwrite: bool,
    /// Training arithmetic: auto = mixed bfloat16 on CUDA or a CPU with native bf16 (about 2× faster), else float32;
    /// float32 = bit-reproducible for a seed. Denoising picks its own precision (`denoise --precision`).
    #[arg(long, default_value_t, value_parser = words::<deepcad::train::Precision>())]
    pub precision: deepcad::train::Precision,
    /// Learning-rate schedule: cosine (from --learning-rate down to 0 over the run or the time budget) or constant.
    #[arg(long, default_value_t, value_parser = words::<deepcad::train::Schedule>())]
    pub schedule: deepcad::train::Schedule,
    /// Training loss: mse (learns the mean of the noisy target: right for shot noise at any brightness),
    /// or l1-mse, DeepCAD's 0.5·L1 + 0.5·MSE (its median pull fails on dim data).
    #[arg(long, default_value_t, value_parser = words::<deepcad::train::Loss>())]
    pub loss: deepcad::train::Loss,
    /// How a new model normalises intensities: per-movie (each movie's own mean and standard deviation,
    /// at training and at denoising: any brightness, the built-in model's units) or fixed (the training
    /// data's, applied unchanged to every input).
    #[arg(long, default_value_t, value_parser = words::<deepcad::train::NormalizationChoice>())]
    pub normalization: deepcad::train::NormalizationChoice,
    /// Where a new model starts: builtin = the built-in general model's weights (a fine-tune; learns
    /// much faster), random = from scratch. Random is used anyway for a base width other than 16 or
    /// fixed normalisation (with a note).
    #[arg(long, default_value_t, value_parser = words::<deepcad::train::Init>())]
    pub init: deepcad::train::Init,
    /// Self-supervision: interlaced (DeepCAD: odd frames predicted from even frames), hybrid (that
    /// context plus a blind spot on the current frame, meant to keep events shorter than the frame
    /// spacing) or masked (hidden voxels predicted from consecutive frames, the current one
    /// included; denoises exactly like interlaced). Hybrid and masked are experimental, not yet
    /// better on the spike harness. Recorded in the bundle; denoising follows it. A hybrid or
    /// masked bundle resumed keeps its method.
    #[arg(long, default_value_t, value_parser = words::<deepcad::model::SelfSupervision>())]
    pub method: deepcad::model::SelfSupervision,
    #[command(flatten)]
    pub compute: Compute,
}

#[derive(Args)]
pub struct DenoiseArgs {
    /// Movies (TIFF files or Zarr arrays) or folders of them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Model bundle (.safetensors), an official DeepCAD-RT checkpoint (.pth), or `default` for the
    /// built-in general model (no training needed; a model trained on your data is usually better).
    #[arg(long, short)]
    pub model: PathBuf,
    /// Output file (one input; `.zarr` writes a Zarr v3 array) or folder (several inputs; created if missing).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Denoise only block I of N (counting from 0, e.g. $SLURM_ARRAY_TASK_ID/4) into a shared
    /// `.zarr` output that the first block job creates. The blocks together equal the whole-movie
    /// result bit for bit; re-running a finished block changes nothing.
    #[arg(long, value_parser = parse_block, conflicts_with_all = ["blocks", "compat"])]
    pub block: Option<(usize, usize)>,
    /// List the plan for N blocks (frames of each); with --prepare, also create the shared output.
    #[arg(long, conflicts_with = "compat")]
    pub blocks: Option<usize>,
    /// With --blocks: create the shared `.zarr` output now (what the first block job would do).
    #[arg(long, requires = "blocks")]
    pub prepare: bool,
    /// Reproduce an official DeepCAD-RT test pipeline instead of our seamless tiling, so a
    /// checkpoint gives its authors' numbers (tile seams and all): deepcad-rt (since 2022) or
    /// deepcad-rt-2021 (the release that trained the official checkpoint). Holds the movie in memory.
    #[arg(long, value_parser = words::<deepcad::infer::official_pipeline::OfficialPipeline>())]
    pub compat: Option<deepcad::infer::official_pipeline::OfficialPipeline>,
    /// With --compat: the pipeline's patch t,y,x (default 150,150,150).
    #[arg(long, value_parser = parse_triple, requires = "compat")]
    pub patch: Option<[usize; 3]>,
    /// With --compat: overlap factor between patches (deepcad-rt's demo default 0.6).
    #[arg(long, requires = "compat", conflicts_with = "gap")]
    pub overlap: Option<f64>,
    /// With --compat: gaps between patch origins t,y,x (deepcad-rt-2021's default 60,90,90).
    #[arg(long, value_parser = parse_triple, requires = "compat")]
    pub gap: Option<[usize; 3]>,
    /// Sample type written: auto = the input's bit depth, or 32-bit float when the model's data are
    /// too dim for integer rounding (it would cost dB); input = always the input's; float32 = always float.
    #[arg(long, default_value_t, value_parser = words::<deepcad::infer::OutputType>())]
    pub output_type: deepcad::infer::OutputType,
    /// Same as --output-type float32.
    #[arg(long, conflicts_with = "output_type")]
    pub float32: bool,
    /// Tile size t,y,x (multiples of 8). Default: the least-overhead tile within --max-memory.
    #[arg(long, value_parser = parse_triple)]
    pub tile: Option<[usize; 3]>,
    /// Memory for the whole denoising working set (network activations and frames in flight), e.g. 1G, 512M;
    /// auto = half the memory available at start, at least 1G and at most 8G.
    #[arg(long, default_value = "auto", value_parser = parse_memory_budget)]
    pub max_memory: usize,
    /// Tiles per network call (helps on GPUs).
    #[arg(long, default_value_t = deepcad::infer::DenoiseSettings::default().batch_size)]
    pub batch_size: usize,
    /// Network arithmetic: auto (bfloat16 where the CPU or GPU computes it natively, float32
    /// elsewhere), float32, or bfloat16: faster on CPUs with AVX512-BF16 or AMX and on Ampere+ GPUs
    /// (refused elsewhere), at most 0.01 dB from float32 in the evaluation.
    #[arg(long, default_value_t, value_parser = words::<deepcad::model::precision::InferencePrecision>())]
    pub precision: deepcad::model::precision::InferencePrecision,
    /// Channel of a multi-channel hyperstack (counting from 0).
    #[arg(long)]
    pub channel: Option<usize>,
    /// Z slice of a 3-D time-lapse hyperstack (counting from 0).
    #[arg(long)]
    pub slice: Option<usize>,
    /// Suffix for output names when --output is a folder: cells.tif → cells-denoised.tif.
    #[arg(long, default_value = deepcad::infer::DEFAULT_SUFFIX)]
    pub suffix: String,
    /// Replace existing output files (never an input movie). Without it, an existing output is
    /// refused before any work starts.
    #[arg(long)]
    pub overwrite: bool,
    /// Reuse large CPU tensors between tiles (experimental, off by default: with it, a bfloat16
    /// run changed later runs' outputs in one process; kept to measure and to find why).
    #[arg(long, hide = true)]
    pub tensor_pool: bool,
    /// Add back the fast, cell-sized events the network removed with the noise (a transient that
    /// decays within a few frames: a fast indicator at a low frame rate), where the movie's mean
    /// shows cells. auto (the default) measures how fast the movie's events decay on its first
    /// frames and restores when they decay within 14 frames, saying why in the log; on restores
    /// always (--restore-events alone means on), off never. Restoring raises whole-mask spike
    /// inference towards the raw movie's on fast movies; on slow ones it would cost SNR.
    #[arg(long, default_value_t, value_parser = words::<deepcad::infer::EventRestoration>(),
          num_args = 0..=1, default_missing_value = "on")]
    pub restore_events: deepcad::infer::EventRestoration,
    /// Follow one TIFF or Zarr array that another program is still writing: denoise its frames as
    /// they land into a TIFF output that grows with it (valid after every frame), until
    /// --follow-frames frames were read, `<input>.done` appears, or the input stops changing for
    /// --follow-idle. A TIFF page is read only once the next one exists or the file has settled;
    /// a Zarr chunk row only once the writer has begun a later one. `<output>.done` records the run.
    #[arg(long, conflicts_with_all = ["block", "blocks", "compat"])]
    pub follow: bool,
    /// With --follow: stop after this many frames.
    #[arg(long, requires = "follow")]
    pub follow_frames: Option<usize>,
    /// With --follow: stop when the input has not grown for this long (e.g. 10s, 2min).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub follow_idle: std::time::Duration,
    /// With --follow: frames after a step to wait for before denoising it. Default: the network's
    /// whole temporal reach (the halo, 52 frames), giving the same numbers as the finished file;
    /// fewer frames: less delay, the future mirrored.
    #[arg(long, requires = "follow")]
    pub look_ahead: Option<usize>,
    /// With --follow: frames denoised per step (a multiple of 8): larger steps keep up with faster
    /// cameras and add that many frames of delay.
    #[arg(long, default_value_t = 16)]
    pub live_step: usize,
    /// With --follow: when denoising falls behind the camera, drop = write whole steps undenoised
    /// (listed in `<output>.done`), queue = denoise every frame and fail past --max-behind frames.
    #[arg(long, default_value = "drop", value_parser = words::<deepcad::infer::Backlog>())]
    pub behind: deepcad::infer::Backlog,
    /// With --follow: frames that may wait before --behind applies.
    #[arg(long, default_value_t = 64)]
    pub max_behind: usize,
    #[command(flatten)]
    pub compute: Compute,
}

#[derive(Args)]
pub struct InfoArgs {
    /// Model bundle to describe (`default`: the built-in general model).
    pub model: Option<PathBuf>,
    /// Print the bundle's metadata as JSON.
    #[arg(long)]
    pub json: bool,
    /// List usable devices.
    #[arg(long)]
    pub devices: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The PyTorch checkpoint (e.g. E_10_Iter_3500.pth).
    pub checkpoint: PathBuf,
    /// Its para.yaml (default: para.yaml beside the checkpoint, if present).
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// Bundle to write (.safetensors).
    #[arg(long, short)]
    pub output: PathBuf,
    /// The normalisation the checkpoint was trained with: stack-mean (DeepCAD-RT since 2022) or
    /// stack-min (the 2021 release, which trained the official checkpoint). Default: what para.yaml
    /// implies, else stack-mean.
    #[arg(long, value_parser = words::<deepcad::model::import::ReferenceNormalization>())]
    pub normalization: Option<deepcad::model::import::ReferenceNormalization>,
    /// Replace an existing file at the output path.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Args)]
pub struct ExportBioimageioArgs {
    /// Model bundle (.safetensors) or official DeepCAD-RT checkpoint (.pth).
    pub model: PathBuf,
    /// Package to write: a folder, or a .zip file (what bioimage.io uploads and deepImageJ installs).
    #[arg(long, short)]
    pub output: PathBuf,
    /// A TIFF movie whose centre block becomes the test input and cover (default: seeded random values).
    #[arg(long)]
    pub test_input: Option<PathBuf>,
    /// Package name (default: "DeepCAD 3D U-Net denoiser (base width F)").
    #[arg(long)]
    pub name: Option<String>,
    /// Author name; repeat for several (default: "deepcad user").
    #[arg(long = "author")]
    pub authors: Vec<String>,
    /// SPDX licence of the weights.
    #[arg(long, default_value = "MIT")]
    pub license: String,
    /// Declare the time axis as space axis `z`, for consumers whose tilers only handle space axes.
    #[arg(long)]
    pub time_as_z: bool,
    /// Replace an existing output (only once the new package is complete).
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Args)]
pub struct ScoreArgs {
    /// Denoised movies to score, as FILE or NAME=FILE.
    #[arg(required = true)]
    pub outputs: Vec<String>,
    /// The noisy movie the outputs were made from.
    #[arg(long)]
    pub raw: PathBuf,
    /// Noise-free ground truth of the same size (e.g. from `deepcad simulate --truth`).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Label image of the neurons (0 = background, n = neuron n) for trace correlations.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Also score a moving average and a 3-D Gaussian filter at their best widths (needs --truth).
    #[arg(long)]
    pub baselines: bool,
    /// First frame the model was not trained on (e.g. `train --max-frames N`), for the held-out check.
    #[arg(long)]
    pub held_out_from: Option<usize>,
    /// Also write every number as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Replace an existing file at the --json path.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Folder for the movie, model, denoised output and picture.
    #[arg(long, default_value = "deepcad-demo")]
    pub out: PathBuf,
    /// Training epochs (the demo is brief on purpose).
    #[arg(long, default_value_t = 4)]
    pub epochs: usize,
    #[arg(long, default_value_t = 2.0)]
    pub photons: f64,
    #[command(flatten)]
    pub compute: Compute,
}

#[derive(Args)]
pub struct ConvertArgs {
    /// A TIFF/BigTIFF file or a Zarr array (v3 or v2).
    pub input: PathBuf,
    /// The output: a name ending in .zarr writes Zarr v3, anything else TIFF (BigTIFF when large).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Zarr chunk shape t,y,x (default: 256×256 tiles, about 4 MB, in shards of whole frames).
    #[arg(long, value_parser = parse_triple)]
    pub chunk: Option<[usize; 3]>,
    /// Channel of a multi-channel input (counting from 0).
    #[arg(long)]
    pub channel: Option<usize>,
    /// Z slice of a 3-D time-lapse TIFF hyperstack (counting from 0).
    #[arg(long)]
    pub slice: Option<usize>,
    /// Replace an existing output.
    #[arg(long)]
    pub overwrite: bool,
    /// Memory for reading, converting and writing at once, e.g. 1G, 512M; auto = the machine's
    /// default budget as for denoise (frames or chunks that need more are refused before anything is read).
    #[arg(long, default_value = "auto", value_parser = parse_memory_budget)]
    pub max_memory: usize,
}

#[derive(Args)]
pub struct StatusArgs {
    /// The shared `.zarr` output of block jobs.
    pub output: PathBuf,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CompareArgs {
    pub first: PathBuf,
    pub second: PathBuf,
    /// Largest |difference| still counted as equal (default 0: bit for bit).
    #[arg(long, default_value_t = 0.0)]
    pub tolerance: f64,
}
