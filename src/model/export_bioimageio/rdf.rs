//! The package's texts: `rdf.yaml` (spec 0.5: axes, sizes with halo, weights, hashes, citations)
//! and the README that travels with it.

use std::collections::HashMap;

use super::{
    ExportOptions, TemporalAxis, COVER_FILE, DOCUMENTATION_FILE, LIBTORCH_VERSION, REPRODUCTION_TOLERANCE,
    SAMPLE_INPUT_FILE, SAMPLE_OUTPUT_FILE, SPEC_FORMAT_VERSION, TEST_INPUT_FILE, TEST_OUTPUT_FILE, WEIGHTS_FILE,
};
use crate::geometry::ALIGNMENT;
use crate::model::bundle::software_version;
use crate::model::{Model, Normalization};

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
pub(super) fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("strings always serialise")
}

pub(super) fn package_name(model: &Model, options: &ExportOptions) -> String {
    options
        .name
        .clone()
        .unwrap_or_else(|| format!("DeepCAD 3D U-Net denoiser (base width {})", model.metadata.base_width))
}

pub(super) fn package_description(options: &ExportOptions) -> String {
    options.description.clone().unwrap_or_else(|| {
        "Self-supervised denoising of fluorescence time-lapse movies (DeepCAD / DeepCAD-RT 3-D U-Net); takes and returns raw intensities".to_string()
    })
}

pub(super) const CITATIONS: [(&str, &str); 2] = [
    (
        "Li, X. et al. Reinforcing neuron extraction and spike inference in calcium imaging using deep self-supervised denoising. Nat. Methods 18, 1395-1400 (2021).",
        "10.1038/s41592-021-01225-0",
    ),
    (
        "Li, X. et al. Real-time denoising enables high-sensitivity fluorescence time-lapse imaging beyond the shot-noise limit. Nat. Biotechnol. 41, 282-292 (2023).",
        "10.1038/s41587-022-01450-8",
    ),
];

pub(super) fn rdf_text(
    model: &Model,
    min_size: [usize; 3],
    options: &ExportOptions,
    hashes: &HashMap<&str, &str>,
) -> String {
    let halo = model.metadata.halo;
    let mut authors = options.authors.clone();
    if authors.is_empty() {
        authors.push("deepcad user".to_string());
    }
    let first_axis = |input: bool| -> String {
        let size = if input {
            format!("        size: {{min: {}, step: {ALIGNMENT}}}\n", min_size[0])
        } else {
            format!("        size: {{tensor_id: raw, axis_id: {}}}\n        halo: {}\n", temporal_id(options), halo[0])
        };
        match options.temporal_axis {
            TemporalAxis::Time => format!("      - type: time\n        id: time\n{size}"),
            TemporalAxis::Z => format!("      - type: space\n        id: z\n{size}"),
        }
    };
    let space_axis = |id: &str, i: usize, input: bool| -> String {
        if input {
            format!(
                "      - type: space\n        id: {id}\n        size: {{min: {}, step: {ALIGNMENT}}}\n",
                min_size[i]
            )
        } else {
            format!("      - type: space\n        id: {id}\n        size: {{tensor_id: raw, axis_id: {id}}}\n        halo: {}\n", halo[i])
        }
    };
    let tensor = |id: &str, input: bool, description: &str, file: &str, sample: &str| -> String {
        format!(
            "  - id: {id}\n    description: {}\n    axes:\n      - type: batch\n      - type: channel\n        channel_names: [{id}]\n{}{}{}    test_tensor:\n      source: {file}\n      sha256: {}\n    sample_tensor:\n      source: {sample}\n      sha256: {}\n    data:\n      type: float32\n",
            quoted(description),
            first_axis(input),
            space_axis("y", 1, input),
            space_axis("x", 2, input),
            hashes[file],
            hashes[sample],
        )
    };
    let mut text = String::new();
    text.push_str("# BioImage Model Zoo model description written by deepcad export-bioimageio\n");
    text.push_str("type: model\n");
    text.push_str(&format!("format_version: {SPEC_FORMAT_VERSION}\n"));
    text.push_str(&format!("name: {}\n", quoted(&package_name(model, options))));
    text.push_str(&format!("description: {}\n", quoted(&package_description(options))));
    text.push_str("authors:\n");
    for author in &authors {
        text.push_str(&format!("  - name: {}\n", quoted(author)));
    }
    text.push_str("cite:\n");
    for (citation, doi) in CITATIONS {
        text.push_str(&format!("  - text: {}\n    doi: {doi}\n", quoted(citation)));
    }
    text.push_str(&format!("license: {}\n", options.license.as_deref().unwrap_or("MIT")));
    text.push_str(&format!("documentation: {DOCUMENTATION_FILE}\n"));
    text.push_str(&format!("covers:\n  - {COVER_FILE}\n"));
    text.push_str(
        "tags: [denoising, self-supervised, fluorescence, calcium-imaging, time-lapse, 3d, unet, deepcad, pytorch]\n",
    );
    text.push_str(&format!("inputs:\n{}", tensor("raw", true, "Raw fluorescence movie in its own intensity units (normalisation is inside the model); time, y and x multiples of 8", TEST_INPUT_FILE, SAMPLE_INPUT_FILE)));
    text.push_str(&format!(
        "outputs:\n{}",
        tensor(
            "denoised",
            false,
            "Denoised movie, same size and intensity units; crop the halo of each tile",
            TEST_OUTPUT_FILE,
            SAMPLE_OUTPUT_FILE
        )
    ));
    text.push_str("weights:\n  torchscript:\n");
    text.push_str(&format!("    source: {WEIGHTS_FILE}\n    sha256: {}\n", hashes[WEIGHTS_FILE]));
    text.push_str(&format!("    pytorch_version: \"{LIBTORCH_VERSION}\"\n"));
    text.push_str(&format!(
        "    comment: {}\n",
        quoted(&format!("traced with libtorch {LIBTORCH_VERSION} by {}", software_version()))
    ));
    text
}

pub(super) fn temporal_id(options: &ExportOptions) -> &'static str {
    match options.temporal_axis {
        TemporalAxis::Time => "time",
        TemporalAxis::Z => "z",
    }
}

pub(super) fn documentation_text(model: &Model, min_size: [usize; 3], options: &ExportOptions) -> String {
    let m = &model.metadata;
    let normalisation = match m.normalization {
        Normalization::Fixed { offset, scale } => format!(
            "fixed statistics from training: the model computes `(x - {offset}) / {scale}`, runs the network and maps back with `y * {scale} + {offset}`"
        ),
        Normalization::PerMovie => "the movie's own statistics: `(x - mean(x)) / std(x)`, the network, and back with `y * std(x) + mean(x)`, where mean and (population) standard deviation are those of the tensor passed to the model (`deepcad denoise` measures them on up to 256 frames spread over the whole movie, so tiled results can differ slightly)".to_string(),
        Normalization::StackMin { normalize_factor } => format!(
            "the 2021 DeepCAD-RT convention: `(x - min(x)) / {normalize_factor}` and back (the minimum added back), where `min(x)` is the minimum of the tensor passed to the model (of each tile when a consumer tiles; `deepcad denoise` uses the whole stack)"
        ),
        Normalization::StackMean { scale_factor } => format!(
            "DeepCAD-RT's convention: `(x - mean(x)) / {scale_factor}` and back, where `mean(x)` is the mean of the tensor passed to the model (of each tile when a consumer tiles; `deepcad denoise` uses the whole stack, so tiled results can differ slightly)"
        ),
    };
    let time = match options.temporal_axis {
        TemporalAxis::Time => "`time`",
        TemporalAxis::Z => "`z` (it is time; declared as a space axis for consumers that tile only space axes)",
    };
    let citations: String = CITATIONS.iter().map(|(c, doi)| format!("- {c} https://doi.org/{doi}\n")).collect();
    format!(
        "# {name}\n\n{description}\n\n\
## What it does\n\
A 3-D U-Net (DeepCAD / DeepCAD-RT architecture, base width {f}, {p} parameters) trained self-supervised on \
{trained_on} of a fluorescence movie. It convolves over time, y and x together. This package holds the \
network alone: `deepcad denoise` also restores fast events afterwards, by default where a movie's events decay \
within a few frames (a fast indicator or a low frame rate), and a consumer of this package does not; its output \
smooths such brief transients.\n\n\
## Input and output\n\
- Tensor layout `batch, channel, time, y, x` (one channel); the first spatial axis is {time}.\n\
- Raw intensities in, denoised intensities out (float32); normalisation is part of the model: {normalisation}.\n\
- Every spatial size must be a multiple of 8, at least {min:?} (`t, y, x`).\n\
- Halo {halo:?} (`t, y, x`): when tiling, overlap tiles and discard that many voxels at each tile edge; \
voxels nearer the border are influenced by zero padding.\n\n\
## Weights\n\
TorchScript traced from Rust with libtorch {LIBTORCH_VERSION} (`deepcad export-bioimageio`). No `pytorch_state_dict` \
is included. Runtimes older than the one that wrote the archive may refuse to load it.\n\n\
## Validation\n\
On export, the saved TorchScript was reloaded and run on `test_input.npy`; it reproduces the engine's output \
(`test_output.npy`) within a relative error of {tolerance:e}. This is a check of faithful export, not of \
denoising quality: judge that on your own data (compare against a temporal average and inspect traces).\n\n\
## Training\n\
Origin: {origin}; epochs completed: {epochs}; software: {software}.\n\n\
## Citation\n{citations}",
        name = package_name(model, options),
        description = package_description(options),
        f = m.base_width,
        p = m.parameters,
        min = min_size,
        halo = m.halo,
        trained_on = match m.method {
            crate::model::SelfSupervision::Masked => "masked voxels of consecutive frames",
            _ => "interlaced frames",
        },
        origin = if m.training.origin.is_empty() { "unknown" } else { &m.training.origin },
        epochs = m.training.epochs_completed,
        software = m.training.software,
        tolerance = REPRODUCTION_TOLERANCE,
    )
}
