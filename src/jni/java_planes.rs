//! A Fiji image read frame by frame on demand: the engine's `FrameSource` over a Java
//! `org.deepcad.fiji.PlaneSource`, whose `plane(t)` returns frame t's pixel array (for a virtual
//! stack, read from disk only then). The streaming engine reads on its calling thread, so every
//! call stays on the Java thread that made the native call; each frame's local references are
//! freed at once, so a movie of any length is never held whole.

use std::cell::RefCell;

use jni::objects::{JObject, JValue};
use jni::{jni_sig, jni_str};

use crate::io::FrameSource;
use crate::io::SampleType;
use crate::{Error, Result};

use super::failure::{Failure, JniResult};
use super::java_progress::JavaProgress;
use super::pixels::PlaneReader;

pub struct JavaPlanes<'r, 'a, 'local> {
    /// The progress adapter owns the environment; frames borrow it between progress events.
    shared: &'r RefCell<JavaProgress<'a, 'local>>,
    source: &'r JObject<'local>,
    name: String,
    width: usize,
    height: usize,
    frames: usize,
    sample_type: SampleType,
    reader: PlaneReader,
}

impl<'r, 'a, 'local> JavaPlanes<'r, 'a, 'local> {
    pub fn new(
        shared: &'r RefCell<JavaProgress<'a, 'local>>,
        source: &'r JObject<'local>,
        name: String,
        frames: i32,
        width: i32,
        height: i32,
        sample_type: SampleType,
    ) -> JniResult<Self> {
        if source.is_null() {
            return Err(Error::usage("the plane source is null").into());
        }
        if frames <= 0 {
            return Err(Error::usage(format!("{name}: the movie has {frames} frames; it needs at least 1")).into());
        }
        let reader = PlaneReader::new(width, height, sample_type)?;
        Ok(JavaPlanes {
            shared,
            source,
            name,
            width: width as usize,
            height: height as usize,
            frames: frames as usize,
            sample_type,
            reader,
        })
    }
}

impl FrameSource for JavaPlanes<'_, '_, '_> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
    fn frames(&self) -> usize {
        self.frames
    }
    fn sample_type(&self) -> SampleType {
        self.sample_type
    }

    fn read_frame(&mut self, t: usize, out: &mut [f32]) -> Result<()> {
        let mut progress = self.shared.borrow_mut();
        if progress.thrown.is_some() {
            return Err(Error::Cancelled);
        }
        let (source, reader) = (self.source, &mut self.reader);
        let outcome = progress.env().with_local_frame(4, |env| -> JniResult<()> {
            let plane = env
                .call_method(source, jni_str!("plane"), jni_sig!("(I)Ljava/lang/Object;"), &[JValue::Int(t as i32)])?
                .l()?;
            reader.read(env, plane, t, out)
        });
        match outcome {
            Ok(()) => Ok(()),
            // What Java threw reaches the caller unchanged (the entry point re-raises `thrown`);
            // the engine only needs to stop.
            Err(_) if progress.keep_pending_exception() => Err(Error::Cancelled),
            Err(Failure::Engine(e)) => Err(e),
            Err(other) => Err(Error::usage(format!("{}: frame {}: {other}", self.name, t + 1))),
        }
    }
}
