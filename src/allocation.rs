//! Large buffers allocated fallibly: a request the process cannot satisfy becomes an error naming
//! what it was for, never an abort (inside Fiji an abort would take the whole JVM down).

use crate::{Error, Result};

/// A zero-filled `f32` buffer of `len` values, or an error saying what `what` needed.
pub fn zeroed_f32(len: usize, what: &str) -> Result<Vec<f32>> {
    let mut values = Vec::new();
    values.try_reserve_exact(len).map_err(|_| {
        Error::Limits(format!(
            "not enough memory for {what} ({:.0} MB); lower the memory budget or free memory",
            len as f64 * 4.0 / 1e6
        ))
    })?;
    values.resize(len, 0.0);
    Ok(values)
}

/// An empty `f32` buffer with room for `len` values, or an error saying what `what` needed.
pub fn with_capacity_f32(len: usize, what: &str) -> Result<Vec<f32>> {
    let mut values = Vec::new();
    values.try_reserve_exact(len).map_err(|_| {
        Error::Limits(format!(
            "not enough memory for {what} ({:.0} MB); free memory or work on a smaller movie",
            len as f64 * 4.0 / 1e6
        ))
    })?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_request_is_an_error_not_an_abort() {
        let error = zeroed_f32(usize::MAX / 8, "a test buffer").unwrap_err().to_string();
        assert!(error.contains("a test buffer"), "{error}");
        assert_eq!(zeroed_f32(3, "three").unwrap(), vec![0.0; 3]);
    }
}
