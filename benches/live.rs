//! Live denoising at camera rates: a camera loop pushes frames at a fixed rate into the engine's
//! live stream for a while and counts what comes back. Printed, never asserted.
//!
//!   cargo bench --bench live                                  # 512×512 @ 30 Hz and 256×256 @ 200 Hz, 20 s each
//!   cargo bench --bench live -- seconds=10 step=32            # shorter, larger steps
//!   cargo bench --bench live -- cases=128x128@50 device=cuda  # other sizes, rates, a GPU
//!
//! Options (key=value): cases (WxH@Hz, comma-separated), seconds (acquisition time per case, 20),
//! step (frames per step, 16), look_ahead (frames; default the halo), behind (drop|queue, drop),
//! model (a bundle, or `default` for the built-in model), device (cpu), threads (all cores).
//!
//! Per case: frames pushed, denoised, passed through undenoised, late; sustained denoised frames
//! per second over the acquisition; the delay from a frame's push to its return (median, 95th
//! percentile, max; only frames returned during the acquisition); the process's peak RSS so far.

use std::path::Path;
use std::time::{Duration, Instant};

use deepcad::infer::{Backlog, LiveSettings, LiveStream};
use deepcad::io::SampleType;
use deepcad::model::Model;

struct Case {
    width: usize,
    height: usize,
    hz: f64,
}

struct Options {
    cases: Vec<Case>,
    seconds: f64,
    step: usize,
    look_ahead: Option<usize>,
    behind: Backlog,
    model: String,
    device: String,
    threads: Option<usize>,
}

fn parse_case(text: &str) -> Case {
    let (size, hz) = text.split_once('@').expect("cases look like 512x512@30");
    let (w, h) = size.split_once('x').expect("cases look like 512x512@30");
    Case { width: w.parse().unwrap(), height: h.parse().unwrap(), hz: hz.parse().unwrap() }
}

fn parse_options() -> Options {
    let mut o = Options {
        cases: vec![parse_case("512x512@30"), parse_case("256x256@200")],
        seconds: 20.0,
        step: 16,
        look_ahead: None,
        behind: Backlog::Drop,
        model: "default".into(),
        device: "cpu".into(),
        threads: None,
    };
    for arg in std::env::args().skip(1).filter(|a| !a.starts_with("--")) {
        let (key, value) = arg.split_once('=').unwrap_or_else(|| panic!("expected key=value, got '{arg}'"));
        match key {
            "cases" => o.cases = value.split(',').map(parse_case).collect(),
            "seconds" => o.seconds = value.parse().unwrap(),
            "step" => o.step = value.parse().unwrap(),
            "look_ahead" => o.look_ahead = Some(value.parse().unwrap()),
            "behind" => o.behind = if value == "queue" { Backlog::Queue } else { Backlog::Drop },
            "model" => o.model = value.into(),
            "device" => o.device = value.into(),
            "threads" => o.threads = Some(value.parse().unwrap()),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1));
    kb.and_then(|k| k.parse::<f64>().ok()).map_or(f64::NAN, |k| k / 1024.0)
}

/// A camera-like frame: a noisy pattern that moves with time.
fn camera_frame(t: usize, width: usize, height: usize, out: &mut [f32]) {
    for (i, v) in out.iter_mut().enumerate() {
        let (x, y) = (i % width, i / width);
        let signal = 200.0 + 150.0 * (((x + t) as f32 * 0.05).sin() * ((y as f32) * 0.07).cos());
        let noise = ((i.wrapping_mul(2654435761) ^ t.wrapping_mul(40503)) % 97) as f32;
        *v = signal + noise;
    }
    let _ = height;
}

fn run_case(o: &Options, case: &Case) {
    let device = deepcad::device::parse_device(&o.device).unwrap();
    let model = Model::load(Path::new(&o.model), device).unwrap();
    let settings = LiveSettings {
        step: o.step,
        look_ahead: o.look_ahead,
        backlog: o.behind,
        max_backlog_frames: 64,
        ..Default::default()
    };
    let name = format!("{}x{}@{}Hz", case.width, case.height, case.hz);
    let mut stream = LiveStream::new(model, &name, case.width, case.height, SampleType::U16, settings).unwrap();
    let period = Duration::from_secs_f64(1.0 / case.hz);
    let total = (o.seconds * case.hz).round() as usize;
    let mut frame = vec![0f32; case.width * case.height];
    let (mut delays, mut denoised, mut passed) = (Vec::new(), 0usize, 0usize);
    let mut first_denoised: Option<Instant> = None;
    let started = Instant::now();
    for t in 0..total {
        if let Some(wait) = (period * t as u32).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        camera_frame(t, case.width, case.height, &mut frame);
        let finished = match stream.push(&frame) {
            Ok(finished) => finished,
            Err(e) => {
                println!("{name}: stopped at frame {t}: {e}");
                break;
            }
        };
        for f in finished {
            delays.push(f.arrived.elapsed().as_secs_f64());
            if f.denoised {
                denoised += 1;
                first_denoised.get_or_insert_with(Instant::now);
            } else {
                passed += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let status = stream.status();
    delays.sort_by(f64::total_cmp);
    let q = |p: f64| delays.get(((delays.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    let schedule = stream.schedule();
    println!(
        "| {name} | {} | {} | {} | {} | {:.1} | {:.2} / {:.2} / {:.2} | {} ({:.2} s at this rate) | {:?} | {:.0} |",
        status.arrived,
        denoised,
        passed,
        status.late,
        denoised as f64 / elapsed,
        q(0.5),
        q(0.95),
        q(1.0),
        schedule.steady_delay_frames(),
        schedule.steady_delay_frames() as f64 / case.hz,
        stream.tile(),
        peak_rss_mb()
    );
    // Not finished: the backlog would be denoised at the network's pace; the run measured ends here.
}

fn main() {
    let o = parse_options();
    if let Some(n) = o.threads {
        tch::set_num_threads(n as i32);
    }
    println!(
        "live denoising, {} s of acquisition per case, step {}, look-ahead {}, behind {:?}, model {}, device {}, {} threads",
        o.seconds,
        o.step,
        o.look_ahead.map_or("halo (exact)".to_string(), |a| a.to_string()),
        o.behind,
        o.model,
        o.device,
        tch::get_num_threads()
    );
    println!("| case | pushed | denoised | undenoised | late | denoised fps | delay s (median / p95 / max) | declared delay frames | tile | peak RSS MB |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for case in &o.cases {
        run_case(&o, case);
    }
    // The streams' workers may still be inside a step: leave without running libtorch's static
    // destructors under them (they crash), as the CLI does on a second Ctrl-C.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: ends the process at once; nothing of ours runs after it.
    unsafe { libc::_exit(0) };
}
