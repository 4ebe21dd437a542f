//! Reads the official DeepCAD / DeepCAD-RT PyTorch checkpoints (`.pth`) without Python and
//! without running anything from the file.
//!
//! `torch.save` writes a zip archive: `<name>/data.pkl` (a pickle describing the state dict),
//! `<name>/data/<key>` (one raw little-endian storage per tensor) and a few small text entries.
//! A pickle is a program for a stack machine, and Python's unpickler will import and call any
//! function it names, so the file is untrusted input. This module interprets only the opcodes
//! `torch.save` emits, resolves only an allow-list of names into inert markers (never code),
//! and checks every size against the archive before it allocates or copies anything.
//!
//! One file per step: `archive` (the zip entries, sizes checked against the archive),
//! `unpickle` (the restricted pickle machine) over `pickle_values` (what it may build), and
//! `tensors` (from the unpickled state dict to checked float32 tensors).

mod archive;
mod pickle_values;
mod tensors;
mod unpickle;

use std::io::{BufReader, Read};
use std::path::Path;

use crate::{Error, Result};

pub use tensors::{normalise_reference_key, PthTensor};

/// data.pkl of a DeepCAD state dict is about 9 KB whatever the width; 4 MiB is generous.
const MAX_PICKLE_BYTES: u64 = 4 << 20;

/// Reads every tensor of a torch zip-format state dict, in the order the pickle stores them.
/// Names are normalised with [`normalise_reference_key`] (so `module.` prefixes are dropped and a
/// missing `Generator.` prefix is added). Only float32 tensors are accepted.
pub fn read_pth(path: &Path) -> Result<Vec<PthTensor>> {
    let file = crate::io::open_regular_file(path)?;
    let mut magic = [0u8; 2];
    let got = (&file).read(&mut magic).map_err(|e| Error::io(path, e))?;
    if got == 2 && magic[0] == 0x80 && magic[1] <= 5 {
        return Err(Error::unsupported(
            path,
            "this is a legacy (pre-1.6) torch checkpoint, not the zip format; re-save it with a \
             current torch: torch.save(torch.load(old, map_location='cpu'), new)",
        ));
    }
    let file = crate::io::open_regular_file(path)?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| Error::model(path, format!("not a torch checkpoint (zip archive): {e}")))?;

    let prefix = archive::archive_prefix(path, &archive)?;
    archive::check_byte_order(path, &mut archive, &prefix)?;
    let pickle = archive::read_entry(path, &mut archive, &format!("{prefix}data.pkl"), MAX_PICKLE_BYTES)?;
    let root = unpickle::Unpickler::new(path, &pickle).run()?;
    let records = tensors::state_dict_records(path, &root)?;
    tensors::materialise(path, &mut archive, &prefix, records)
}
