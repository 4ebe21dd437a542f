//! How failures cross into Java: every engine error becomes a `org.deepcad.fiji.DeepCadException`
//! carrying the engine's kind and message; a panic becomes one of kind "internal". An exception a
//! Java callback threw is left pending and so reaches the caller unchanged.

use std::any::Any;

use jni::errors::ErrorPolicy;
use jni::objects::{JString, JThrowable, JValue};
use jni::refs::Global;
use jni::{jni_sig, jni_str, Env, EnvUnowned};

/// What can go wrong in a native call.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Engine(#[from] crate::Error),
    #[error("JNI: {0}")]
    Jni(#[from] jni::errors::Error),
    /// A Java callback threw; the throwable is re-raised as it is.
    #[error("a Java callback threw an exception")]
    JavaThrew(Global<JThrowable<'static>>),
}

impl Failure {
    fn kind_and_message(&self) -> (&'static str, String) {
        match self {
            Failure::Engine(e) => (e.kind(), e.to_string()),
            Failure::Jni(e) => {
                ("internal", format!("JNI call failed ({e}); please report this with the steps that led to it"))
            }
            Failure::JavaThrew(_) => ("internal", self.to_string()),
        }
    }
}

pub type JniResult<T> = std::result::Result<T, Failure>;

/// The error policy of every entry point.
pub struct ThrowDeepCadException;

/// The one way every entry point meets Java: `body` runs inside `with_env` (a panic is caught) and
/// a failure becomes a pending `DeepCadException` (the return value is then `T::default()`).
pub fn answer<'local, T: Default + 'local>(
    unowned: &mut EnvUnowned<'local>,
    body: impl FnOnce(&mut Env<'local>) -> JniResult<T>,
) -> T {
    unowned.with_env(body).resolve::<ThrowDeepCadException>()
}

/// [`answer`] for the entry points that return text (a JSON report): `body`'s string as a Java string.
pub fn answer_text<'local>(
    unowned: &mut EnvUnowned<'local>,
    body: impl FnOnce(&mut Env<'local>) -> JniResult<String>,
) -> JString<'local> {
    answer(unowned, |env| {
        let text = body(env)?;
        Ok(env.new_string(text)?)
    })
}

const EXCEPTION_CLASS: &jni::strings::JNIStr = jni_str!("org/deepcad/fiji/DeepCadException");

fn throw_deepcad(env: &mut Env<'_>, kind: &str, message: &str) -> jni::errors::Result<()> {
    let kind = env.new_string(kind)?;
    let message = env.new_string(message)?;
    let exception = env.new_object(
        EXCEPTION_CLASS,
        jni_sig!("(Ljava/lang/String;Ljava/lang/String;)V"),
        &[JValue::Object(&kind), JValue::Object(&message)],
    )?;
    let throwable = env.cast_local::<JThrowable>(exception)?;
    // `throw` reports the now-pending exception as an error; pending is exactly what we want.
    let _ = env.throw(&throwable);
    Ok(())
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl<T: Default> ErrorPolicy<T, Failure> for ThrowDeepCadException {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut (),
        err: Failure,
    ) -> jni::errors::Result<T> {
        if let Failure::JavaThrew(throwable) = &err {
            if !env.exception_check() {
                let throwable: &JThrowable<'static> = throwable;
                let _ = env.throw(throwable);
            }
            return Ok(T::default());
        }
        if env.exception_check() {
            // A JNI call left an exception pending (e.g. OutOfMemoryError allocating the result): keep it.
            return Ok(T::default());
        }
        let (kind, message) = err.kind_and_message();
        throw_deepcad(env, kind, &message)?;
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut (),
        payload: Box<dyn Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        if env.exception_check() {
            env.exception_clear();
        }
        let message = format!(
            "internal error in the DeepCAD engine: {}; please report this with the steps that led to it",
            panic_text(&*payload)
        );
        throw_deepcad(env, "internal", &message)?;
        Ok(T::default())
    }
}
