//! GF(2^16) with liberasurecode's polynomial 0x1100B and generator 2, the field of its
//! built-in `liberasurecode_rs_vand` backend, which reads each block as little-endian
//! 16-bit words (the byte order of the x86 and ARM hosts pyeclib runs on).

use std::sync::OnceLock;

pub use crate::gf8::Kernel;

const POLY: u32 = 0x1100b;
const GROUP: usize = 65535;

struct Tables {
    log: Vec<u32>,
    /// `exp[i] = 2^i` over three periods, so sums and differences of logs index it directly.
    exp: Vec<u16>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut log = vec![0u32; 65536];
        let mut exp = vec![0u16; GROUP * 3];
        let mut x: u32 = 1;
        for i in 0..GROUP {
            log[x as usize] = i as u32;
            exp[i] = x as u16;
            exp[i + GROUP] = x as u16;
            exp[i + 2 * GROUP] = x as u16;
            x <<= 1;
            if x & 0x10000 != 0 {
                x ^= POLY;
            }
        }
        Tables { log, exp }
    })
}

pub fn mul(a: u16, b: u16) -> u16 {
    if a == 0 || b == 0 {
        return 0;
    }
    let t = tables();
    t.exp[(t.log[a as usize] + t.log[b as usize]) as usize]
}

/// The multiplicative inverse of a non-zero element (callers never pass 0).
pub fn inv(a: u16) -> u16 {
    let t = tables();
    t.exp[GROUP - t.log[a as usize] as usize]
}

/// liberasurecode's systematic Vandermonde matrix, `(k + m)` rows of `k`, built as
/// liberasurecode builds it so the parity is the same:
/// 1. rows `1, 0, …, 0` then, for `i >= 1`, `i^0, i^1, …, i^(k-1)`;
/// 2. column operations (which keep the code's span) turn the top `k` rows into the
///    identity, column by column, swapping in a later row when a diagonal entry is zero;
/// 3. each parity column is scaled so the first parity row is all ones.
pub fn rs_vand_matrix(k: usize, m: usize) -> Vec<u16> {
    let rows = k + m;
    let mut a = vec![0u16; rows * k];
    a[0] = 1;
    for i in 1..rows {
        let mut acc = 1u16;
        for j in 0..k {
            a[i * k + j] = acc;
            acc = mul(acc, i as u16);
        }
    }
    for i in 1..k {
        if let Some(r) = (i..rows).find(|&r| a[r * k + i] != 0) {
            if r != i {
                for j in 0..k {
                    a.swap(r * k + j, i * k + j);
                }
            }
        }
        let diag = a[i * k + i];
        if diag != 1 && diag != 0 {
            let s = inv(diag);
            for r in 0..rows {
                a[r * k + i] = mul(a[r * k + i], s);
            }
        }
        for j in 0..k {
            let f = a[i * k + j];
            if j != i && f != 0 {
                for r in 0..rows {
                    a[r * k + j] ^= mul(a[r * k + i], f);
                }
            }
        }
    }
    for j in 0..k {
        let f = a[k * k + j];
        if f != 1 && f != 0 {
            let s = inv(f);
            for r in k..rows {
                a[r * k + j] = mul(a[r * k + j], s);
            }
        }
    }
    a
}

/// The inverse of the `n` x `n` row-major matrix, or `None` when it is singular.
pub fn invert(matrix: &[u16], n: usize) -> Option<Vec<u16>> {
    let mut a = matrix.to_vec();
    let mut out = vec![0u16; n * n];
    for i in 0..n {
        out[i * n + i] = 1;
    }
    for col in 0..n {
        let pivot = (col..n).find(|&r| a[r * n + col] != 0)?;
        if pivot != col {
            for j in 0..n {
                a.swap(pivot * n + j, col * n + j);
                out.swap(pivot * n + j, col * n + j);
            }
        }
        let scale = inv(a[col * n + col]);
        for j in 0..n {
            a[col * n + j] = mul(a[col * n + j], scale);
            out[col * n + j] = mul(out[col * n + j], scale);
        }
        for r in 0..n {
            let f = a[r * n + col];
            if r == col || f == 0 {
                continue;
            }
            for j in 0..n {
                a[r * n + j] ^= mul(f, a[col * n + j]);
                out[r * n + j] ^= mul(f, out[col * n + j]);
            }
        }
    }
    Some(out)
}

/// Bytes of each source per pass (even, so words never straddle passes).
const CHUNK: usize = 4096;

/// `outs[r] = sum_j coefs[r * srcs.len() + j] * srcs[j]` over little-endian 16-bit words.
/// Lengths are equal and even (the codec aligns blocks to whole words).
pub fn dot_rows_with(kernel: Kernel, coefs: &[u16], srcs: &[&[u8]], outs: &mut [&mut [u8]]) {
    let len = outs.first().map_or(0, |o| o.len());
    let nsrc = srcs.len();
    debug_assert_eq!(len % 2, 0);
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Gfni && crate::gf8::has_gfni() {
        let matrices: Vec<[u64; 4]> = coefs.iter().map(|&c| affine_matrices(c)).collect();
        let mut first_row = 0;
        for group in outs.chunks_mut(4) {
            let rows = &matrices[first_row * nsrc..(first_row + group.len()) * nsrc];
            for start in (0..len).step_by(CHUNK) {
                let end = (start + CHUNK).min(len);
                // SAFETY: AVX-512BW and GFNI were detected at run time by has_gfni.
                unsafe { x86::dot_gfni(rows, srcs, start, end, group) };
            }
            first_row += group.len();
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if matches!(kernel, Kernel::Gfni | Kernel::Avx2) && std::arch::is_x86_feature_detected!("avx2")
    {
        let tables: Vec<[u8; 128]> = coefs.iter().map(|&c| nibble_tables(c)).collect();
        for start in (0..len).step_by(CHUNK) {
            let end = (start + CHUNK).min(len);
            for (r, out) in outs.iter_mut().enumerate() {
                let row = &tables[r * nsrc..(r + 1) * nsrc];
                // SAFETY: AVX2 was detected at run time just above.
                unsafe { x86::dot_avx2(row, srcs, start, end, out) };
            }
        }
        return;
    }
    // Portable: per coefficient, the products of every low byte and every high byte.
    let tables: Vec<Vec<u16>> = coefs.iter().map(|&c| byte_tables(c)).collect();
    for start in (0..len).step_by(CHUNK) {
        let end = (start + CHUNK).min(len);
        for (r, out) in outs.iter_mut().enumerate() {
            let dst = &mut out[start..end];
            dst.fill(0);
            for (j, src) in srcs.iter().enumerate() {
                let t = &tables[r * nsrc + j];
                for (d, s) in dst.chunks_exact_mut(2).zip(src[start..end].chunks_exact(2)) {
                    let p = t[s[0] as usize] ^ t[256 + s[1] as usize];
                    let w = u16::from_le_bytes([d[0], d[1]]) ^ p;
                    d.copy_from_slice(&w.to_le_bytes());
                }
            }
        }
    }
}

/// `c * b` then `c * (b << 8)` for every byte `b`.
fn byte_tables(c: u16) -> Vec<u16> {
    (0..512u32)
        .map(|i| {
            if i < 256 {
                mul(c, i as u16)
            } else {
                mul(c, ((i - 256) << 8) as u16)
            }
        })
        .collect()
}

/// Multiplication by `c` as four GFNI bit matrices over a word's bytes `lo`, `hi`:
/// `[lo->lo, hi->lo, hi->hi, lo->hi]`, so the product's low byte is
/// `A0 lo ^ A1 hi` and its high byte `A2 hi ^ A3 lo`.
fn affine_matrices(c: u16) -> [u64; 4] {
    // Column j of each block: the image of input bit j, shifted to the output byte.
    let block = |in_shift: u32, out_shift: u32| {
        crate::gf8::affine_from_columns(|j| (mul(c, 1 << (j + in_shift)) >> out_shift) as u8)
    };
    [block(0, 0), block(8, 0), block(8, 8), block(0, 8)]
}

/// For each of the word's four nibbles `q` (low nibble of the low byte first), 16 entries
/// of the low byte of `c * (n << 4q)`, then 16 of its high byte: eight 16-byte tables.
fn nibble_tables(c: u16) -> [u8; 128] {
    let mut t = [0u8; 128];
    for q in 0..4 {
        for n in 0..16u16 {
            let p = mul(c, n << (4 * q)).to_le_bytes();
            t[q * 32 + n as usize] = p[0];
            t[q * 32 + 16 + n as usize] = p[1];
        }
    }
    t
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// GFNI over 64-byte steps (32 words), up to four outputs sharing each source load.
    /// `v` is the bytes, `s` the bytes with each word's two swapped: even lanes (low bytes)
    /// take `A0 v ^ A1 s`, odd lanes (high bytes) `A2 v ^ A3 s`, merged by a lane mask.
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    pub(super) unsafe fn dot_gfni(
        matrices: &[[u64; 4]],
        srcs: &[&[u8]],
        start: usize,
        end: usize,
        outs: &mut [&mut [u8]],
    ) {
        match outs.len() {
            1 => dot_gfni_n::<1>(matrices, srcs, start, end, outs),
            2 => dot_gfni_n::<2>(matrices, srcs, start, end, outs),
            3 => dot_gfni_n::<3>(matrices, srcs, start, end, outs),
            _ => dot_gfni_n::<4>(matrices, srcs, start, end, outs),
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn dot_gfni_n<const N: usize>(
        matrices: &[[u64; 4]],
        srcs: &[&[u8]],
        start: usize,
        end: usize,
        outs: &mut [&mut [u8]],
    ) {
        let nsrc = srcs.len();
        let wide: Vec<[__m512i; 4]> = matrices
            .iter()
            .map(|q| std::array::from_fn(|b| _mm512_set1_epi64(q[b] as i64)))
            .collect();
        // Per 128-bit lane, byte indexes 1,0,3,2,…,15,14: each word's bytes swapped.
        let (lo_q, hi_q) = (0x0607_0405_0203_0001_i64, 0x0e0f_0c0d_0a0b_0809_i64);
        let swap_index = _mm512_set_epi64(hi_q, lo_q, hi_q, lo_q, hi_q, lo_q, hi_q, lo_q);
        // Odd byte lanes: the high byte of each little-endian word.
        let odd: __mmask64 = 0xaaaa_aaaa_aaaa_aaaa;
        let mut i = start;
        while i + 64 <= end {
            let mut acc = [_mm512_setzero_si512(); N];
            for (j, src) in srcs.iter().enumerate() {
                // SAFETY: i + 64 <= end <= src.len().
                let v = unsafe { _mm512_loadu_si512(src.as_ptr().add(i).cast()) };
                let s = _mm512_shuffle_epi8(v, swap_index);
                for (r, a) in acc.iter_mut().enumerate() {
                    let m = &wide[r * nsrc + j];
                    let low = _mm512_xor_si512(
                        _mm512_gf2p8affine_epi64_epi8::<0>(v, m[0]),
                        _mm512_gf2p8affine_epi64_epi8::<0>(s, m[1]),
                    );
                    let high = _mm512_xor_si512(
                        _mm512_gf2p8affine_epi64_epi8::<0>(v, m[2]),
                        _mm512_gf2p8affine_epi64_epi8::<0>(s, m[3]),
                    );
                    *a = _mm512_xor_si512(*a, _mm512_mask_blend_epi8(odd, low, high));
                }
            }
            for (out, a) in outs.iter_mut().zip(acc) {
                // SAFETY: i + 64 <= end <= out.len().
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(i).cast(), a) };
            }
            i += 64;
        }
        // The tail: whole words, shorter than one register.
        while i + 2 <= end {
            for (r, out) in outs.iter_mut().enumerate() {
                let mut acc = [0u8; 2];
                for (j, src) in srcs.iter().enumerate() {
                    let q = &matrices[r * nsrc + j];
                    let (lo, hi) = (src[i], src[i + 1]);
                    acc[0] ^=
                        crate::gf8::apply_affine(q[0], lo) ^ crate::gf8::apply_affine(q[1], hi);
                    acc[1] ^=
                        crate::gf8::apply_affine(q[2], hi) ^ crate::gf8::apply_affine(q[3], lo);
                }
                out[i..i + 2].copy_from_slice(&acc);
            }
            i += 2;
        }
    }

    /// Each 32-byte step holds 16 words. With `v` the bytes and `s` the bytes with each
    /// word's two swapped, even lanes (low bytes) need the low-byte tables looked up by
    /// `v` (own nibbles) and `s` (the high byte's nibbles); odd lanes the high-byte
    /// tables, by `s` (the low byte's nibbles) and `v`. Both sums are computed for all
    /// lanes and blended by lane parity.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dot_avx2(
        row: &[[u8; 128]],
        srcs: &[&[u8]],
        start: usize,
        end: usize,
        out: &mut [u8],
    ) {
        let mask = _mm256_set1_epi8(0x0f);
        let swap = _mm256_setr_epi8(
            1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11,
            10, 13, 12, 15, 14,
        );
        let odd = _mm256_set1_epi16(0xff00u16 as i16);
        let wide: Vec<[__m256i; 8]> = row
            .iter()
            .map(|t| {
                std::array::from_fn(|q| {
                    // SAFETY: q < 8, so bytes 16q..16q+16 lie inside the 128-byte table.
                    let x = unsafe { _mm_loadu_si128(t.as_ptr().add(16 * q).cast()) };
                    _mm256_broadcastsi128_si256(x)
                })
            })
            .collect();
        let mut i = start;
        while i + 32 <= end {
            let mut acc = _mm256_setzero_si256();
            for (src, t) in srcs.iter().zip(&wide) {
                // SAFETY: i + 32 <= end <= src.len().
                let v = unsafe { _mm256_loadu_si256(src.as_ptr().add(i).cast()) };
                let s = _mm256_shuffle_epi8(v, swap);
                let v_lo = _mm256_and_si256(v, mask);
                let v_hi = _mm256_and_si256(_mm256_srli_epi64(v, 4), mask);
                let s_lo = _mm256_and_si256(s, mask);
                let s_hi = _mm256_and_si256(_mm256_srli_epi64(s, 4), mask);
                // Tables: t[2q] = low byte of c*(n<<4q), t[2q+1] = its high byte.
                let low = _mm256_xor_si256(
                    _mm256_xor_si256(
                        _mm256_shuffle_epi8(t[0], v_lo),
                        _mm256_shuffle_epi8(t[2], v_hi),
                    ),
                    _mm256_xor_si256(
                        _mm256_shuffle_epi8(t[4], s_lo),
                        _mm256_shuffle_epi8(t[6], s_hi),
                    ),
                );
                let high = _mm256_xor_si256(
                    _mm256_xor_si256(
                        _mm256_shuffle_epi8(t[1], s_lo),
                        _mm256_shuffle_epi8(t[3], s_hi),
                    ),
                    _mm256_xor_si256(
                        _mm256_shuffle_epi8(t[5], v_lo),
                        _mm256_shuffle_epi8(t[7], v_hi),
                    ),
                );
                acc = _mm256_xor_si256(acc, _mm256_blendv_epi8(low, high, odd));
            }
            // SAFETY: i + 32 <= end <= out.len().
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(i).cast(), acc) };
            i += 32;
        }
        // The tail: whole words, shorter than one register.
        while i + 2 <= end {
            let mut acc = 0u16;
            for (src, t) in srcs.iter().zip(row) {
                let w = u16::from_le_bytes([src[i], src[i + 1]]);
                for q in 0..4 {
                    let n = ((w >> (4 * q)) & 0xf) as usize;
                    acc ^= u16::from_le_bytes([t[q * 32 + n], t[q * 32 + 16 + n]]);
                }
            }
            out[i..i + 2].copy_from_slice(&acc.to_le_bytes());
            i += 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_axioms() {
        for a in [1u16, 2, 3, 0x8000, 0xffff, 0x1234] {
            assert_eq!(mul(a, inv(a)), 1, "a={a}");
        }
        // x^16 = x^12 + x^3 + x + 1 under 0x1100B.
        assert_eq!(mul(0x8000, 2), 0x100b);
    }

    #[test]
    fn first_parity_row_is_all_ones_and_top_is_identity() {
        let (k, m) = (10, 4);
        let a = rs_vand_matrix(k, m);
        for i in 0..k {
            for j in 0..k {
                assert_eq!(a[i * k + j], u16::from(i == j));
            }
        }
        assert!(a[k * k..k * k + k].iter().all(|&v| v == 1));
    }

    #[test]
    fn every_kernel_computes_the_field_sum() {
        for kernel in Kernel::available() {
            kernel_computes_the_field_sum(kernel);
        }
    }

    fn kernel_computes_the_field_sum(kernel: Kernel) {
        let srcs: Vec<Vec<u8>> = (0..3u32)
            .map(|j| {
                (0..1002u32)
                    .map(|i| (i * 131 + j * 17 + (i >> 3)) as u8)
                    .collect()
            })
            .collect();
        let src_refs: Vec<&[u8]> = srcs.iter().map(|s| s.as_slice()).collect();
        // Six outputs: one full group of four and a partial one for the GFNI kernel.
        let coefs: Vec<u16> = (0..18u16)
            .map(|c| c.wrapping_mul(0x3b1d) ^ (c << 3))
            .collect();
        let mut out = vec![vec![0xaau8; 1002]; 6];
        let mut outs: Vec<&mut [u8]> = out.iter_mut().map(|o| o.as_mut_slice()).collect();
        dot_rows_with(kernel, &coefs, &src_refs, &mut outs);
        for r in 0..6 {
            for w in 0..501 {
                let want = (0..3).fold(0u16, |a, j| {
                    let x = u16::from_le_bytes([srcs[j][2 * w], srcs[j][2 * w + 1]]);
                    a ^ mul(coefs[r * 3 + j], x)
                });
                let got = u16::from_le_bytes([out[r][2 * w], out[r][2 * w + 1]]);
                assert_eq!(got, want, "{kernel:?} row {r} word {w}");
            }
        }
    }
}
