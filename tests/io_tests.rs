//! TIFF in and out: round trips per sample type and container, compressed inputs, ImageJ
//! hyperstack metadata, channel/slice views, clipping, every kind of bad input, the writer's
//! all-or-nothing output, and input/output path checks.

use std::fs;
use std::path::{Path, PathBuf};

use deepcad::io::{
    check_output_path, list_movie_inputs, read_stack, write_stack, Calibration, FrameData, ImageJMetadata, OutputKind,
    ReadOptions, SampleType, StackReader, StackWriter,
};
use deepcad::Error;
use tiff::encoder::{colortype, Compression, DeflateLevel, Predictor, TiffEncoder};
use tiff::tags::Tag;

const ALL_TYPES: [SampleType; 4] = [SampleType::U8, SampleType::U16, SampleType::I16, SampleType::F32];

/// A movie whose values vary with x, y and t and stay inside `sample_type`'s range
/// (fractions and negatives only where the type holds them).
fn movie(width: usize, height: usize, frames: usize, sample_type: SampleType) -> Vec<f32> {
    (0..width * height * frames)
        .map(|i| {
            let base = ((i * 37) % 251) as f32;
            match sample_type {
                SampleType::U8 => base,
                SampleType::U16 => base * 261.0,
                SampleType::I16 => base * 130.0 - 16000.0,
                SampleType::F32 => (base - 125.0) * 0.37,
            }
        })
        .collect()
}

fn default_read() -> ReadOptions {
    ReadOptions::default()
}

fn assert_kind(result: Result<impl std::fmt::Debug, Error>, kind: &str, needles: &[&str]) {
    let err = result.expect_err("expected an error");
    assert_eq!(err.kind(), kind, "wrong kind for: {err}");
    let text = err.to_string();
    for needle in needles {
        assert!(text.contains(needle), "message {text:?} lacks {needle:?}");
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Writes pages with the tiff crate directly (not our writer), so reading is tested against an
/// independent encoder.
fn write_u16_pages(
    path: &Path,
    width: u32,
    height: u32,
    pages: &[Vec<u16>],
    compression: Compression,
    predictor: Predictor,
) {
    let file = fs::File::create(path).unwrap();
    let mut encoder = TiffEncoder::new(file).unwrap().with_compression(compression).with_predictor(predictor);
    for page in pages {
        encoder.write_image::<colortype::Gray16>(width, height, page).unwrap();
    }
}

#[test]
fn every_sample_type_round_trips_through_classic_and_bigtiff() {
    let dir = tempfile::tempdir().unwrap();
    let (width, height, frames) = (13, 7, 5);
    for sample_type in ALL_TYPES {
        for kind in [OutputKind::Classic, OutputKind::Big] {
            let path = dir.path().join(format!("{}-{kind:?}.tif", sample_type.name()));
            let data = movie(width, height, frames, sample_type);
            let mut writer =
                StackWriter::create(&path, width, height, frames, sample_type, &ImageJMetadata::default(), kind)
                    .unwrap();
            for frame in data.chunks(width * height) {
                writer.write_frame(frame).unwrap();
            }
            writer.finish().unwrap();

            let magic = fs::read(&path).unwrap()[2];
            assert_eq!(magic, if kind == OutputKind::Big { 43 } else { 42 }, "{path:?}");
            let (info, back) = read_stack(&path, &default_read()).unwrap();
            assert_eq!((info.width, info.height, info.frames), (width, height, frames));
            assert_eq!(info.sample_type, sample_type);
            assert_eq!(info.bigtiff, kind == OutputKind::Big);
            assert_eq!(back, data, "{sample_type} {kind:?}");
        }
    }
}

#[test]
fn raw_frames_round_trip_and_random_access_reads_only_the_asked_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.tif");
    let frames: Vec<FrameData> = (0..6u16).map(|t| FrameData::U16((0..12).map(|i| t * 1000 + i).collect())).collect();
    let mut writer =
        StackWriter::create(&path, 4, 3, frames.len(), SampleType::U16, &ImageJMetadata::default(), OutputKind::Auto)
            .unwrap();
    for frame in &frames {
        writer.write_frame_raw(frame).unwrap();
    }
    writer.finish().unwrap();

    let mut reader = StackReader::open(&path, &default_read()).unwrap();
    is_send(&reader);
    assert_eq!(reader.frame_len(), 12);
    assert!(!reader.info().bigtiff, "a small Auto output is classic TIFF");
    let mut out = vec![0f32; 12];
    for t in [5, 0, 3, 3, 1, 4, 2] {
        assert_eq!(reader.read_frame_raw(t).unwrap(), frames[t]);
        reader.read_frame(t, &mut out).unwrap();
        assert_eq!(out[11], f32::from(t as u16 * 1000 + 11));
    }
    assert_kind(reader.read_frame(6, &mut out), "usage", &["frame 6", "6 frames"]);
    assert_kind(reader.read_frame(0, &mut [0f32; 5]), "usage", &["5 values"]);
}

#[test]
fn compressed_inputs_are_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let (width, height) = (31u32, 17u32);
    let pages: Vec<Vec<u16>> =
        (0..3u32).map(|t| (0..width * height).map(|i| ((i * 7 + t * 977) % 65535) as u16).collect()).collect();
    let cases = [
        ("lzw", Compression::Lzw, Predictor::None),
        ("lzw-predictor", Compression::Lzw, Predictor::Horizontal),
        ("deflate", Compression::Deflate(DeflateLevel::Balanced), Predictor::None),
        ("packbits", Compression::Packbits, Predictor::None),
    ];
    for (name, compression, predictor) in cases {
        let path = dir.path().join(format!("{name}.tif"));
        write_u16_pages(&path, width, height, &pages, compression, predictor);
        let (info, data) = read_stack(&path, &default_read()).unwrap();
        assert_eq!(info.frames, 3, "{name}");
        let expected: Vec<f32> = pages.iter().flatten().map(|&v| f32::from(v)).collect();
        assert_eq!(data, expected, "{name}");
    }
}

#[test]
fn hyperstack_metadata_and_calibration_survive_write_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calibrated.tif");
    let metadata = ImageJMetadata {
        channels: 1,
        slices: 1,
        frames: 6,
        hyperstack: true,
        calibration: Calibration {
            pixel_width: 0.65,
            pixel_height: 0.8,
            pixel_depth: 2.0,
            unit: "\u{b5}m".to_string(),
            frame_interval: 0.033,
            time_unit: "sec".to_string(),
        },
        extra: vec![("loop".to_string(), "false".to_string())],
    };
    write_stack(&path, (8, 5, 6), SampleType::U16, &metadata, &movie(8, 5, 6, SampleType::U16)).unwrap();

    let (info, _) = read_stack(&path, &default_read()).unwrap();
    let back = &info.metadata;
    assert_eq!((back.channels, back.slices, back.frames, back.hyperstack), (1, 1, 6, true));
    assert!((back.calibration.pixel_width - 0.65).abs() < 1e-7, "{:?}", back.calibration);
    assert!((back.calibration.pixel_height - 0.8).abs() < 1e-7, "{:?}", back.calibration);
    assert_eq!(back.calibration.pixel_depth, 2.0);
    assert_eq!(back.calibration.unit, "\u{b5}m");
    assert_eq!(back.calibration.frame_interval, 0.033);
    assert_eq!(back.extra, metadata.extra);

    // What Fiji looks at: the description on page 1 only, and the resolution tags.
    let mut decoder = tiff::decoder::Decoder::new(fs::File::open(&path).unwrap()).unwrap();
    let description = decoder.get_tag_ascii_string(Tag::ImageDescription).unwrap();
    for line in ["images=6\n", "frames=6\n", "hyperstack=true\n", "unit=micron\n", "spacing=2\n", "finterval=0.033\n"] {
        assert!(description.contains(line), "{description:?} lacks {line:?}");
    }
    assert!(description.starts_with("ImageJ="));
    decoder.next_image().unwrap();
    assert!(decoder.find_tag(Tag::ImageDescription).unwrap().is_none(), "description only on the first page");
}

/// A 2-channel, 3-slice, 4-frame hyperstack whose every pixel holds its page number.
fn write_numbered_hyperstack(path: &Path, channels: usize, slices: usize, frames: usize) {
    let metadata = ImageJMetadata { channels, slices, frames, hyperstack: true, ..ImageJMetadata::default() };
    let pages = channels * slices * frames;
    let mut writer = StackWriter::create(path, 3, 2, pages, SampleType::U16, &metadata, OutputKind::Auto).unwrap();
    for page in 0..pages {
        writer.write_frame(&[page as f32; 6]).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn channel_and_slice_selection_picks_the_right_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hyper.tif");
    write_numbered_hyperstack(&path, 2, 3, 4);

    assert_kind(
        StackReader::open(&path, &default_read()),
        "unsupported",
        &["hyper.tif", "2 channels", "choose the channel"],
    );
    let only_channel = ReadOptions { channel: Some(1), slice: None };
    assert_kind(
        StackReader::open(&path, &only_channel),
        "unsupported",
        &["hyper.tif", "3 slices", "4 frames", "choose the slice"],
    );
    assert_kind(
        StackReader::open(&path, &ReadOptions { channel: Some(2), slice: Some(0) }),
        "usage",
        &["channel C3 (index 2 counting from 0)"],
    );
    assert_kind(
        StackReader::open(&path, &ReadOptions { channel: Some(0), slice: Some(3) }),
        "usage",
        &["slice Z4 (index 3 counting from 0)"],
    );

    let mut reader = StackReader::open(&path, &ReadOptions { channel: Some(1), slice: Some(2) }).unwrap();
    assert_eq!(reader.info().frames, 4);
    let meta = &reader.info().metadata;
    assert_eq!((meta.channels, meta.slices, meta.frames), (1, 1, 4));
    let mut out = vec![0f32; 6];
    for t in (0..4).rev() {
        reader.read_frame(t, &mut out).unwrap();
        let page = 1 + 2 * (2 + 3 * t); // XYCZT: channel fastest
        assert_eq!(out, vec![page as f32; 6], "t={t}");
    }
}

/// An OME-TIFF as Bio-Formats writes one: the OME-XML on the first page, pages numbered by their
/// index, channels × time in the given dimension order.
fn write_numbered_ome_tiff(path: &Path, order: &str, channels: usize, frames: usize) {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="{order}" Type="uint16" SizeX="3" SizeY="2" SizeC="{channels}" SizeZ="1" SizeT="{frames}" PhysicalSizeX="0.25" PhysicalSizeY="0.25"><Channel ID="Channel:0:0"/></Pixels></Image></OME>"#
    );
    let mut encoder = TiffEncoder::new(fs::File::create(path).unwrap()).unwrap();
    for page in 0..channels * frames {
        let mut image = encoder.new_image::<colortype::Gray16>(3, 2).unwrap();
        if page == 0 {
            image.encoder().write_tag(Tag::ImageDescription, xml.as_str()).unwrap();
        }
        image.write_data(&[page as u16; 6]).unwrap();
    }
}

#[test]
fn ome_tiff_channels_are_never_read_as_time() {
    let dir = tempfile::tempdir().unwrap();
    for (order, page_of) in [("XYCZT", (|c, t| c + 3 * t) as fn(usize, usize) -> usize), ("XYTCZ", |c, t| t + 20 * c)] {
        let path = dir.path().join(format!("{order}.ome.tif"));
        write_numbered_ome_tiff(&path, order, 3, 20);
        // As for an ImageJ hyperstack: the channel must be chosen, never interleaved into time.
        assert_kind(StackReader::open(&path, &default_read()), "unsupported", &["3 channels", "choose the channel"]);
        let mut reader = StackReader::open(&path, &ReadOptions { channel: Some(2), slice: None }).unwrap();
        assert_eq!(reader.info().frames, 20, "{order}");
        assert_eq!(reader.info().metadata.calibration.pixel_width, 0.25);
        let mut out = vec![0f32; 6];
        for t in [0, 7, 19] {
            reader.read_frame(t, &mut out).unwrap();
            assert_eq!(out, vec![page_of(2, t) as f32; 6], "{order} t={t}");
        }
    }
    // Sizes that disagree with the pages are refused, naming the OME-XML (same length, so every
    // offset in the file stays valid).
    let short = dir.path().join("short.ome.tif");
    write_numbered_ome_tiff(&short, "XYCZT", 3, 20);
    let mut bytes = fs::read(&short).unwrap();
    let at = bytes.windows(10).position(|w| w == b"SizeT=\"20\"").unwrap();
    bytes[at + 8] = b'1';
    fs::write(&short, &bytes).unwrap();
    let err = StackReader::open(&short, &ReadOptions { channel: Some(0), slice: None }).unwrap_err();
    assert!(err.to_string().contains("OME-XML") && err.to_string().contains("short.ome.tif"), "{err}");
}

#[test]
fn a_plain_stack_runs_time_along_slices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zstack.tif");
    write_numbered_hyperstack(&path, 2, 5, 1);
    let mut reader = StackReader::open(&path, &ReadOptions { channel: Some(1), slice: None }).unwrap();
    assert_eq!(reader.info().frames, 5);
    let meta = &reader.info().metadata;
    assert_eq!((meta.channels, meta.slices, meta.frames), (1, 5, 1));
    let mut out = vec![0f32; 6];
    reader.read_frame(3, &mut out).unwrap();
    assert_eq!(out[0], (1 + 2 * 3) as f32);
    assert_kind(StackReader::open(&path, &ReadOptions { channel: Some(0), slice: Some(1) }), "usage", &["slice 1"]);

    // Written back through the view's metadata, the time axis stays on slices.
    let (info, data) = read_stack(&path, &ReadOptions { channel: Some(0), slice: None }).unwrap();
    let copy = dir.path().join("copy.tif");
    write_stack(&copy, (info.width, info.height, info.frames), info.sample_type, &info.metadata, &data).unwrap();
    let (again, data_again) = read_stack(&copy, &default_read()).unwrap();
    assert_eq!((again.metadata.slices, again.metadata.frames), (5, 1));
    assert_eq!(data_again, data);
}

#[test]
fn writing_rounds_half_away_from_zero_and_clips_to_the_type() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(SampleType, Vec<f32>, Vec<f32>); 3] = [
        (SampleType::U16, vec![70000.4, -3.0, 2.5, f32::NAN], vec![65535.0, 0.0, 3.0, 0.0]),
        (SampleType::U8, vec![255.5, 0.49, 127.5, -0.5], vec![255.0, 0.0, 128.0, 0.0]),
        (SampleType::I16, vec![-2.5, -40000.0, 40000.0, 1.5], vec![-3.0, -32768.0, 32767.0, 2.0]),
    ];
    for (sample_type, input, expected) in cases {
        let path = dir.path().join(format!("clip-{sample_type}.tif"));
        write_stack(&path, (2, 2, 1), sample_type, &ImageJMetadata::default(), &input).unwrap();
        let (_, back) = read_stack(&path, &default_read()).unwrap();
        assert_eq!(back, expected, "{sample_type}");
    }
}

#[test]
fn missing_and_non_tiff_files_are_reported_with_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent-movie.tif");
    assert_kind(read_stack(&missing, &default_read()), "io", &["absent-movie.tif"]);

    let text = dir.path().join("notes-really.tif");
    fs::write(&text, "this is a lab notebook, not an image\n").unwrap();
    assert_kind(read_stack(&text, &default_read()), "format", &["notes-really.tif", "not a TIFF"]);

    let empty = dir.path().join("empty.tif");
    fs::write(&empty, b"").unwrap();
    assert_kind(read_stack(&empty, &default_read()), "format", &["empty.tif"]);

    let no_pages = dir.path().join("no-pages.tif");
    fs::write(&no_pages, b"II*\0\0\0\0\0").unwrap();
    assert_kind(read_stack(&no_pages, &default_read()), "format", &["no-pages.tif", "no images"]);
}

#[test]
fn truncated_files_are_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Our writer (IFD after each page) and a file cut in the middle of its pixel data.
    let whole = dir.path().join("whole.tif");
    write_stack(&whole, (32, 32, 4), SampleType::U16, &ImageJMetadata::default(), &movie(32, 32, 4, SampleType::U16))
        .unwrap();
    let bytes = fs::read(&whole).unwrap();
    let half = dir.path().join("half.tif");
    fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    assert_kind(read_stack(&half, &default_read()), "format", &["half.tif", "truncated"]);

    // ImageJ's layout: all page directories first, pixel data after; cut inside the data.
    let imagej = dir.path().join("imagej-layout.tif");
    let frames: Vec<Vec<u16>> = (0..4).map(|t| vec![t as u16; 64]).collect();
    fs::write(&imagej, imagej_style_tiff(8, 8, &frames, true)).unwrap();
    assert_eq!(read_stack(&imagej, &default_read()).unwrap().1[64 * 3], 3.0);
    let bytes = fs::read(&imagej).unwrap();
    let cut = dir.path().join("imagej-cut.tif");
    fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    assert_kind(read_stack(&cut, &default_read()), "format", &["imagej-cut.tif", "truncated"]);
}

#[test]
fn unsupported_pixel_layouts_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let rgb = dir.path().join("colour.tif");
    TiffEncoder::new(fs::File::create(&rgb).unwrap())
        .unwrap()
        .write_image::<colortype::RGB8>(4, 4, &[7u8; 48])
        .unwrap();
    assert_kind(
        read_stack(&rgb, &default_read()),
        "unsupported",
        &["colour.tif", "RGB (3 samples per pixel)", "convert to grayscale (Image > Type > 16-bit)", "split channels"],
    );

    let double = dir.path().join("double.tif");
    TiffEncoder::new(fs::File::create(&double).unwrap())
        .unwrap()
        .write_image::<colortype::Gray64Float>(2, 2, &[1.0f64; 4])
        .unwrap();
    assert_kind(read_stack(&double, &default_read()), "unsupported", &["double.tif", "64-bit float", "32-bit"]);

    let int32 = dir.path().join("int32.tif");
    TiffEncoder::new(fs::File::create(&int32).unwrap())
        .unwrap()
        .write_image::<colortype::GrayI32>(2, 2, &[1i32; 4])
        .unwrap();
    assert_kind(read_stack(&int32, &default_read()), "unsupported", &["int32.tif", "32-bit integers"]);
}

#[test]
fn non_finite_float_pixels_are_named_by_frame_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan-movie.tif");
    let mut encoder = TiffEncoder::new(fs::File::create(&path).unwrap()).unwrap();
    let mut second = vec![1.5f32; 12];
    second[4 + 2] = f32::NAN; // x=2, y=1 in a 4-wide frame
    encoder.write_image::<colortype::Gray32Float>(4, 3, &[0.5f32; 12]).unwrap();
    encoder.write_image::<colortype::Gray32Float>(4, 3, &second).unwrap();
    drop(encoder);

    let mut reader = StackReader::open(&path, &default_read()).unwrap();
    let mut out = vec![0f32; 12];
    reader.read_frame(0, &mut out).unwrap();
    assert_kind(
        reader.read_frame(1, &mut out),
        "format",
        &["nan-movie.tif", "frame 2 (index 1", "x=2 y=1", "NaN", "movies with non-finite values are not read"],
    );
    assert_kind(reader.read_frame_raw(1), "format", &["x=2 y=1"]);
}

#[test]
fn pages_of_different_size_or_type_are_rejected_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = dir.path().join("sizes.tif");
    let mut encoder = TiffEncoder::new(fs::File::create(&sizes).unwrap()).unwrap();
    encoder.write_image::<colortype::Gray16>(8, 8, &[1u16; 64]).unwrap();
    encoder.write_image::<colortype::Gray16>(8, 8, &[1u16; 64]).unwrap();
    encoder.write_image::<colortype::Gray16>(8, 9, &[1u16; 72]).unwrap();
    drop(encoder);
    assert_kind(read_stack(&sizes, &default_read()), "format", &["sizes.tif", "page 3", "8x9", "8x8"]);

    let types = dir.path().join("types.tif");
    let mut encoder = TiffEncoder::new(fs::File::create(&types).unwrap()).unwrap();
    encoder.write_image::<colortype::Gray16>(2, 2, &[1u16; 4]).unwrap();
    encoder.write_image::<colortype::Gray8>(2, 2, &[1u8; 4]).unwrap();
    drop(encoder);
    assert_kind(read_stack(&types, &default_read()), "format", &["types.tif", "page 2", "u8", "u16"]);
}

#[test]
fn imagej_large_stack_layout_is_read_from_one_directory() {
    // ImageJ saves stacks over 4 GB with a single IFD and `images=N`, the frames back to back.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contiguous.tif");
    let frames: Vec<Vec<u16>> = (0..5).map(|t| (0..6).map(|i| t * 100 + i).collect()).collect();
    fs::write(&path, imagej_style_tiff(3, 2, &frames, false)).unwrap();
    let mut reader = StackReader::open(&path, &default_read()).unwrap();
    assert_eq!(reader.info().frames, 5);
    for t in [4, 0, 2] {
        assert_eq!(reader.read_frame_raw(t).unwrap(), FrameData::U16(frames[t].clone()));
    }
    let bytes = fs::read(&path).unwrap();
    let cut = dir.path().join("contiguous-cut.tif");
    fs::write(&cut, &bytes[..bytes.len() - 4]).unwrap();
    assert_kind(StackReader::open(&cut, &default_read()), "format", &["contiguous-cut.tif", "5 images", "truncated"]);
}

/// A little-endian classic TIFF laid out the way ImageJ writes it: header, page directories,
/// description, then all pixel data. With `all_pages` false only the first page gets a directory
/// (ImageJ's layout for stacks over 4 GB).
fn imagej_style_tiff(width: u32, height: u32, frames: &[Vec<u16>], all_pages: bool) -> Vec<u8> {
    let description = format!("ImageJ=1.54f\nimages={}\nslices={}\nloop=false\n\0", frames.len(), frames.len());
    let ifd_count = if all_pages { frames.len() } else { 1 };
    let entries = 10u32;
    let ifd_size = 2 + 12 * entries + 4;
    let description_offset = 8 + ifd_size * ifd_count as u32;
    let data_offset = description_offset + description.len() as u32;
    let frame_bytes = width * height * 2;
    let mut out = b"II*\0".to_vec();
    out.extend(8u32.to_le_bytes());
    for page in 0..ifd_count as u32 {
        out.extend((entries as u16).to_le_bytes());
        let mut entry = |tag: u16, kind: u16, count: u32, value: u32| {
            out.extend(tag.to_le_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(count.to_le_bytes());
            out.extend(value.to_le_bytes());
        };
        entry(256, 4, 1, width);
        entry(257, 4, 1, height);
        entry(258, 3, 1, 16);
        entry(259, 3, 1, 1);
        entry(262, 3, 1, 1);
        if page == 0 {
            entry(270, 2, description.len() as u32, description_offset);
        } else {
            entry(305, 2, 4, u32::from_le_bytes(*b"ij\0\0"));
        }
        entry(273, 4, 1, data_offset + page * frame_bytes);
        entry(277, 3, 1, 1);
        entry(278, 4, 1, height);
        entry(279, 4, 1, frame_bytes);
        let next = if page + 1 < ifd_count as u32 { 8 + ifd_size * (page + 1) } else { 0 };
        out.extend(next.to_le_bytes());
    }
    out.extend(description.as_bytes());
    for frame in frames {
        for v in frame {
            out.extend(v.to_le_bytes());
        }
    }
    out
}

/// Readers and writers move between threads (CLI workers, JNI calls).
fn is_send<T: Send>(_: &T) {}

#[test]
fn a_dropped_writer_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.tif");
    let mut writer =
        StackWriter::create(&path, 4, 4, 3, SampleType::U16, &ImageJMetadata::default(), OutputKind::Auto).unwrap();
    writer.write_frame(&[1.0; 16]).unwrap();
    let during = names_in(dir.path());
    assert_eq!(during.len(), 1);
    assert!(during[0].starts_with(".out.tif.partial-"), "{during:?}");
    assert!(!path.exists(), "nothing under the final name while writing");
    drop(writer);
    assert!(names_in(dir.path()).is_empty(), "{:?}", names_in(dir.path()));
}

#[test]
fn finishing_early_errors_and_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.tif");
    let mut writer =
        StackWriter::create(&path, 4, 4, 3, SampleType::F32, &ImageJMetadata::default(), OutputKind::Auto).unwrap();
    writer.write_frame(&[1.0; 16]).unwrap();
    writer.write_frame(&[2.0; 16]).unwrap();
    assert_kind(writer.finish(), "usage", &["short.tif", "2 of 3 frames"]);
    assert!(names_in(dir.path()).is_empty(), "{:?}", names_in(dir.path()));

    let mut writer =
        StackWriter::create(&path, 4, 4, 1, SampleType::U8, &ImageJMetadata::default(), OutputKind::Auto).unwrap();
    assert_kind(writer.write_frame(&[1.0; 15]), "usage", &["15 values"]);
    assert_kind(writer.write_frame_raw(&FrameData::U16(vec![0; 16])), "usage", &["u8", "u16"]);
    writer.write_frame(&[1.0; 16]).unwrap();
    assert_kind(writer.write_frame(&[1.0; 16]), "usage", &["already written"]);
    is_send(&writer);
    writer.finish().unwrap();
    assert_eq!(names_in(dir.path()), vec!["short.tif"]);
}

#[test]
fn output_paths_are_checked_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.tif");
    write_stack(&input, (2, 2, 1), SampleType::U8, &ImageJMetadata::default(), &[1.0; 4]).unwrap();
    let inputs = vec![input.clone()];

    let same = dir.path().join(".").join("input.tif");
    assert_kind(check_output_path(&same, &inputs), "usage", &["input.tif", "another output name"]);
    check_output_path(&dir.path().join("denoised.tif"), &inputs).unwrap();
    assert_kind(
        check_output_path(&dir.path().join("no-such-dir").join("o.tif"), &inputs),
        "usage",
        &["no-such-dir", "does not exist"],
    );
    assert_kind(check_output_path(&input.join("o.tif"), &inputs), "usage", &["input.tif"]);
    assert_kind(check_output_path(dir.path(), &inputs), "usage", &["folder"]);

    #[cfg(target_os = "linux")]
    assert_kind(
        check_output_path(Path::new("/proc/denoised.tif"), &inputs),
        "usage",
        &["/proc", "cannot create files"],
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.path().join("locked");
        fs::create_dir(&locked).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores permission bits; only assert where they bind.
        let binds = fs::File::create(locked.join("probe")).is_err();
        let result = check_output_path(&locked.join("o.tif"), &inputs);
        if binds {
            assert_kind(result, "usage", &["locked", "cannot create files"]);
        } else {
            result.unwrap();
            fs::remove_file(locked.join("probe")).unwrap();
        }
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn input_folders_list_tiffs_in_order_and_warn_about_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.tif", "a.tiff", "c10.tif"] {
        write_stack(&dir.path().join(name), (2, 2, 1), SampleType::U8, &ImageJMetadata::default(), &[1.0; 4]).unwrap();
    }
    fs::write(dir.path().join("notes.txt"), "exposure 30 ms").unwrap();
    fs::write(dir.path().join("fake.tif"), "not an image").unwrap();
    fs::write(dir.path().join(".hidden.tif.partial-1-0"), "in progress").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();

    let (inputs, warnings) = list_movie_inputs(dir.path()).unwrap();
    let names: Vec<String> = inputs.iter().map(|p| file_name(p)).collect();
    assert_eq!(names, vec!["a.tiff", "b.tif", "c10.tif"]);
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("notes.txt") && w.contains("not a TIFF")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("fake.tif")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("sub")), "{warnings:?}");

    let single = dir.path().join("b.tif");
    assert_eq!(list_movie_inputs(&single).unwrap(), (vec![single.clone()], vec![]));
    let empty = tempfile::tempdir().unwrap();
    assert_kind(list_movie_inputs(empty.path()), "usage", &["no TIFF files"]);
    assert_kind(list_movie_inputs(&dir.path().join("gone")), "io", &["gone"]);
}

fn research_file(name: &str) -> Option<PathBuf> {
    let path = crate::util::shared_dir().join("research-data/fissa_tests_b").join(name);
    path.exists().then_some(path)
}

#[test]
fn a_real_tifffile_stack_reads_as_29_frames_of_21_by_14() {
    let Some(path) = research_file("AVG_A01.tif") else {
        eprintln!("research data not present; skipping");
        return;
    };
    let (info, data) = read_stack(&path, &default_read()).unwrap();
    // tifffile's description says shape [29, 21, 14]: 29 pages of 21 rows by 14 columns.
    assert_eq!((info.frames, info.height, info.width), (29, 21, 14));
    assert_eq!(info.sample_type, SampleType::U16);
    assert_eq!(info.metadata.time_axis_len(), 29);

    // Same pixels as the tiff crate decodes page by page.
    let mut decoder = tiff::decoder::Decoder::new(fs::File::open(&path).unwrap()).unwrap();
    let mut reader = StackReader::open(&path, &default_read()).unwrap();
    let mut frame = vec![0f32; reader.frame_len()];
    for t in 0..29 {
        if t > 0 {
            decoder.next_image().unwrap();
        }
        let tiff::decoder::DecodingResult::U16(page) = decoder.read_image().unwrap() else { panic!("u16 expected") };
        let expected: Vec<f32> = page.iter().map(|&v| f32::from(v)).collect();
        assert_eq!(&data[t * 294..(t + 1) * 294], &expected[..], "frame {t}");
        reader.read_frame(28 - t, &mut frame).unwrap();
        assert_eq!(frame, data[(28 - t) * 294..(29 - t) * 294]);
    }
    assert!(data.iter().any(|&v| v > 0.0));
}

#[test]
fn a_header_claiming_a_huge_frame_is_refused_without_allocating_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.tif");
    let mut bytes = imagej_style_tiff(2, 2, &[vec![0u16; 4]], true);
    // Patch width, height and rows per strip (IFD entries 0, 1 and 8) to 100000.
    for entry in [0, 1, 8] {
        let at = 8 + 2 + 12 * entry + 8;
        bytes[at..at + 4].copy_from_slice(&100_000u32.to_le_bytes());
    }
    fs::write(&path, bytes).unwrap();
    assert_kind(read_stack(&path, &default_read()), "limits", &["huge.tif", "100000x100000"]);
}

#[test]
fn frames_are_stored_back_to_back_as_imagej_expects() {
    // ImageJ reads only the first directory of an `images=N` file and takes the N frames as
    // contiguous from its strip offset; every page must sit exactly where that puts it.
    let dir = tempfile::tempdir().unwrap();
    for (kind, sample_type) in [(OutputKind::Classic, SampleType::U16), (OutputKind::Big, SampleType::F32)] {
        let path = dir.path().join(format!("contiguous-{kind:?}.tif"));
        let (width, height, frames) = (5usize, 3usize, 4usize);
        let data = movie(width, height, frames, sample_type);
        let mut writer =
            StackWriter::create(&path, width, height, frames, sample_type, &ImageJMetadata::default(), kind).unwrap();
        for frame in data.chunks(width * height) {
            writer.write_frame(frame).unwrap();
        }
        writer.finish().unwrap();
        assert_eq!(read_stack(&path, &default_read()).unwrap().1, data);

        let frame_bytes = (width * height * sample_type.bytes()) as u64;
        let mut decoder = tiff::decoder::Decoder::new(fs::File::open(&path).unwrap()).unwrap();
        let first = decoder.get_tag_u64_vec(Tag::StripOffsets).unwrap();
        assert_eq!(first.len(), 1, "one strip per page");
        for page in 1..frames as u64 {
            decoder.next_image().unwrap();
            let offsets = decoder.get_tag_u64_vec(Tag::StripOffsets).unwrap();
            assert_eq!(offsets, vec![first[0] + page * frame_bytes], "page {page} of {kind:?}");
        }
        assert!(!decoder.more_images());

        // The last frame's bytes, little-endian, exactly where ImageJ will look for them.
        let bytes = fs::read(&path).unwrap();
        let start = (first[0] + 3 * frame_bytes) as usize;
        let expected: Vec<u8> = match sample_type {
            SampleType::U16 => data[45..].iter().flat_map(|&v| (v as u16).to_le_bytes()).collect(),
            _ => data[45..].iter().flat_map(|&v| v.to_le_bytes()).collect(),
        };
        assert_eq!(&bytes[start..start + frame_bytes as usize], &expected[..]);
    }
}

#[test]
fn of_two_writers_to_one_path_that_refuse_to_replace_the_second_fails_and_the_first_stays() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.tif");
    let meta = ImageJMetadata::default();
    let open = || {
        StackWriter::create(&target, 4, 4, 1, SampleType::U16, &meta, OutputKind::Auto)
            .unwrap()
            .refuse_existing("denoising")
            .unwrap()
    };
    let (mut first, mut second) = (open(), open());
    first.write_frame(&[1.0; 16]).unwrap();
    second.write_frame(&[2.0; 16]).unwrap();
    first.finish().unwrap();
    let err = second.finish().unwrap_err();
    assert_eq!(err.kind(), "usage");
    assert!(err.to_string().contains("another run wrote it meanwhile"), "{err}");
    let (_, values) = read_stack(&target, &ReadOptions::default()).unwrap();
    assert!(values.iter().all(|&v| v == 1.0), "the first result stays");
    // Nothing of the loser is left behind (no hidden partial file).
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["out.tif".to_string()]);
    // And an existing file is refused before any work.
    let err = StackWriter::create(&target, 4, 4, 1, SampleType::U16, &meta, OutputKind::Auto)
        .unwrap()
        .refuse_existing("denoising")
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}
