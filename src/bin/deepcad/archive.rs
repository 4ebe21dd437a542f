//! The archive commands: `convert` (TIFF ⇄ Zarr, streamed) and `compare` (voxel by voxel; exit 3
//! when the movies differ, like `status` when blocks are missing).

use std::process::ExitCode;

use deepcad::io::ReadOptions;
use deepcad::progress::{report, Event, Progress};
use deepcad::{Error, Result};

use crate::args::{CompareArgs, ConvertArgs};
use crate::block_jobs::NOT_YET_OR_DIFFERENT;

pub fn compare(a: CompareArgs) -> Result<ExitCode> {
    if a.tolerance.is_nan() || a.tolerance < 0.0 {
        return Err(Error::usage(format!("--tolerance {} must be 0 or more", a.tolerance)));
    }
    let c = deepcad::io::compare_movies(&a.first, &a.second, a.tolerance)?;
    if let Some((x, y)) = c.shapes {
        println!("different shapes: {} is {x:?} and {} is {y:?} (t, y, x)", a.first.display(), a.second.display());
    } else if c.equal() {
        let how = if c.max_abs_difference == 0.0 {
            "identical".to_string()
        } else {
            format!("equal within {} (max |difference| {:e})", a.tolerance, c.max_abs_difference)
        };
        println!("{how}: {} voxels", c.voxels);
    } else {
        println!(
            "different: {} of {} voxels, max |difference| {:e}, first in frame {}",
            c.differing,
            c.voxels,
            c.max_abs_difference,
            c.first_differing_frame.unwrap_or(0)
        );
    }
    Ok(if c.equal() { ExitCode::SUCCESS } else { ExitCode::from(NOT_YET_OR_DIFFERENT) })
}

pub fn convert(a: ConvertArgs, progress: &mut dyn Progress) -> Result<()> {
    let options = deepcad::convert::ConvertOptions {
        read: ReadOptions { channel: a.channel, slice: a.slice },
        chunk: a.chunk,
        overwrite: a.overwrite,
        max_memory_bytes: a.max_memory,
    };
    let done = deepcad::convert::convert_movie(&a.input, &a.output, &options, progress)?;
    report(
        progress,
        Event::Info(&format!(
            "{}: {} frames of {}×{} ({}) in {:.1} s",
            a.output.display(),
            done.frames,
            done.width,
            done.height,
            done.sample_type,
            done.seconds
        )),
    )
}
