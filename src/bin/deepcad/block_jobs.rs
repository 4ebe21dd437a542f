//! The cluster commands: block jobs (`denoise --block I/N`, `--blocks N`) and `status` of their
//! shared output. Exit 3 means "not there yet / not equal", so scripts can tell it from a failure
//! (1) or bad input (2).

use std::process::ExitCode;

use deepcad::infer::{BlockJob, BlockPlan, DenoiseSettings};
use deepcad::io::ReadOptions;
use deepcad::model::Model;
use deepcad::progress::{report, Event, Progress};
use deepcad::{Error, Result};

use crate::args::{DenoiseArgs, StatusArgs};

/// Exit code when blocks are missing or movies differ.
pub const NOT_YET_OR_DIFFERENT: u8 = 3;

/// `denoise --block I/N` or `denoise --blocks N [--prepare]`.
pub fn denoise_blocks(
    a: &DenoiseArgs,
    model: &Model,
    settings: &DenoiseSettings,
    progress: &mut dyn Progress,
) -> Result<()> {
    let [input] = a.inputs.as_slice() else {
        return Err(Error::usage(format!("block jobs denoise one movie; {} inputs were given", a.inputs.len())));
    };
    let options = ReadOptions { channel: a.channel, slice: a.slice };
    let count = a.block.map_or_else(|| a.blocks.expect("clap: --block or --blocks"), |(_, count)| count);
    let job = BlockJob { model, input, output: &a.output, count, options: &options, settings };
    if let Some((index, _)) = a.block {
        let done = job.denoise(index, progress)?;
        if !done.already_done {
            report(
                progress,
                Event::Info(&format!(
                    "block {index} of {count}: frames {}..{} written to {} in {:.1} s",
                    done.frames[0],
                    done.frames[1],
                    a.output.display(),
                    done.seconds
                )),
            )?;
        }
        return Ok(());
    }
    let plan = if a.prepare {
        job.prepare(progress)?
    } else {
        let movie = deepcad::io::open_movie(input, &options)?;
        deepcad::infer::plan_blocks(model, movie.source.as_ref(), count, settings)?
    };
    print_plan(&plan);
    Ok(())
}

fn print_plan(plan: &BlockPlan) {
    println!(
        "{}: {} frames of {}×{}, tile {:?}, halo {:?}, shards of {} frames",
        plan.input, plan.shape[0], plan.shape[2], plan.shape[1], plan.tile, plan.halo, plan.shard_frames
    );
    for b in &plan.blocks {
        println!(
            "block {:>4}: frames {:>7}..{:<7} ({} time blocks)",
            b.index,
            b.frames[0],
            b.frames[1],
            b.time_tiles[1] - b.time_tiles[0]
        );
    }
}

pub fn status(a: StatusArgs) -> Result<ExitCode> {
    let status = deepcad::infer::block_status(&a.output)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&status).map_err(|e| Error::usage(e.to_string()))?);
    } else {
        println!(
            "{}: {} of {} blocks done ({} frames)",
            a.output.display(),
            status.done.len(),
            status.count,
            status.frames
        );
        if !status.missing.is_empty() {
            println!("missing: {}", status.missing.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(" "));
        }
        if !status.from_another_input.is_empty() {
            println!(
                "computed from another movie (redo them): {}",
                status.from_another_input.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(" ")
            );
        }
    }
    Ok(if status.complete { ExitCode::SUCCESS } else { ExitCode::from(NOT_YET_OR_DIFFERENT) })
}
