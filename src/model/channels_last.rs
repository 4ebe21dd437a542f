//! The network's activations in channels-last order (NDHWC in memory, still indexed `[N, C, T, H, W]`).
//!
//! oneDNN's 3-D convolutions read and write channels-last memory directly. Given libtorch's default
//! order (NCDHW) it reorders every input, output and gradient into a blocked layout and back, on
//! every call. On a 2-core AMX-BF16 Xeon that made a bfloat16 64³ training step 1.5× and a 144³
//! forward 2.5× slower than the same network in channels-last order (docs/measurements.md,
//! "Channels-last activations"). libtorch keeps a convolution's output in its input's order, and
//! ReLU, max pooling, padding, narrowing and concatenation keep it too, so converting once where
//! a tensor enters a convolution keeps the whole network in it.

use tch::{Device, Kind, Tensor};

use crate::Result;

/// `[N, C, T, H, W]` axes in the order they lie in channels-last memory.
const MEMORY_ORDER: [i64; 5] = [0, 2, 3, 4, 1];
/// From memory order back to `[N, C, T, H, W]` indexing.
const INDEX_ORDER: [i64; 5] = [0, 4, 1, 2, 3];

/// `x` in dense channels-last order: itself (a shallow clone) when it already is, else a copy.
/// Tensors that are not 5-D, or not on the CPU, are returned as they are: the order was measured
/// on CPUs only, and cuDNN's choice of 3-D kernels by memory order has not been (no GPU here).
pub(crate) fn channels_last(x: &Tensor) -> Result<Tensor> {
    if x.dim() != 5 || x.device() != Device::Cpu || is_channels_last(x)? {
        return Ok(x.shallow_clone());
    }
    Ok(x.f_permute(MEMORY_ORDER)?.f_contiguous()?.f_permute(INDEX_ORDER)?)
}

/// Whether the 5-D `x` lies densely in channels-last order.
pub(crate) fn is_channels_last(x: &Tensor) -> Result<bool> {
    Ok(x.f_permute(MEMORY_ORDER)?.is_contiguous())
}

/// An uninitialised `[N, C, T, H, W]` tensor laid out as [`channels_last`] would lay it out.
pub(crate) fn empty_channels_last(size: [i64; 5], options: (Kind, Device)) -> Result<Tensor> {
    let [n, c, t, h, w] = size;
    if options.1 != Device::Cpu {
        return Ok(Tensor::f_empty(size, options)?);
    }
    Ok(Tensor::f_empty([n, t, h, w, c], options)?.f_permute(INDEX_ORDER)?)
}

/// The channels-last memory of `x` as a plain `[N, T, H, W, C]` tensor (a view when `x` is
/// channels-last, else a copy).
pub(crate) fn memory_view(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_permute(MEMORY_ORDER)?.f_contiguous()?)
}

/// The inverse of [`memory_view`]: a `[N, T, H, W, C]` tensor seen as `[N, C, T, H, W]` (copied
/// into the default order off the CPU, where [`channels_last`] keeps that order).
pub(crate) fn from_memory_view(x: &Tensor) -> Result<Tensor> {
    let indexed = x.f_permute(INDEX_ORDER)?;
    if x.device() != Device::Cpu {
        return Ok(indexed.f_contiguous()?);
    }
    Ok(indexed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_keeps_values_and_is_idempotent() {
        let x = Tensor::randn([2, 3, 4, 5, 6], (Kind::Float, Device::Cpu));
        assert!(!is_channels_last(&x).unwrap());
        let y = channels_last(&x).unwrap();
        assert!(is_channels_last(&y).unwrap());
        assert_eq!(y.size(), x.size());
        assert!(y.equal(&x));
        let again = channels_last(&y).unwrap();
        assert_eq!(again.data_ptr(), y.data_ptr(), "an already channels-last tensor is not copied");
        let empty = empty_channels_last([1, 4, 2, 3, 5], (Kind::Float, Device::Cpu)).unwrap();
        assert!(is_channels_last(&empty).unwrap());
        assert!(from_memory_view(&memory_view(&y).unwrap()).unwrap().equal(&x));
    }
}
