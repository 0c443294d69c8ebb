//! How pyeclib cuts an object into segments (`get_segment_info`), which Swift uses to map
//! object byte ranges to fragment-archive byte ranges.

use crate::Codec;

/// pyeclib's `get_segment_info` answer. Fragment sizes include the 80-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub segment_size: u64,
    pub last_segment_size: u64,
    pub fragment_size: u64,
    pub last_fragment_size: u64,
    pub num_segments: u64,
}

/// pyeclib's rules (`pyeclib_c_get_segment_info`):
/// - `num_segments` = `ceil(data_len / segment_size)`;
/// - a last segment shorter than the backend's minimum encode size (`k` words) is folded
///   into the one before it, so an object is never left with a tail too small to encode;
/// - a single segment is the whole object (`segment_size` = `data_len`);
/// - an empty object has 0 segments but reports a full segment as its last one.
pub(crate) fn segment_info(codec: &Codec, data_len: u64, segment_size: u64) -> SegmentInfo {
    let min = codec.min_segment_size() as u64;
    let frag = |n: u64| codec.fragment_size(n as usize) as u64;
    let mut num_segments = if segment_size == 0 {
        0
    } else {
        data_len.div_ceil(segment_size)
    };
    if num_segments == 2 && data_len < segment_size + min {
        num_segments = 1;
    }
    if num_segments == 1 {
        let f = frag(data_len);
        return SegmentInfo {
            segment_size: data_len,
            last_segment_size: data_len,
            fragment_size: f,
            last_fragment_size: f,
            num_segments,
        };
    }
    // pyeclib computes `data_len - segment_size * (num_segments - 1)` in C ints; with no
    // segments that is `data_len + segment_size`.
    let mut last_segment_size = if num_segments == 0 {
        data_len + segment_size
    } else {
        data_len - segment_size * (num_segments - 1)
    };
    if last_segment_size < min {
        num_segments -= 1;
        last_segment_size += segment_size;
    }
    SegmentInfo {
        segment_size,
        last_segment_size,
        fragment_size: frag(segment_size),
        last_fragment_size: frag(last_segment_size),
        num_segments,
    }
}
