//! A streaming reader of tar archives (ustar, GNU long names, pax extended headers) over
//! any async byte source, so `?extract-archive` never holds more than a block and one
//! chunk of a member in memory, whatever the archive's size.
//!
//! A tar archive is a sequence of 512-byte header blocks, each followed by the member's
//! bytes padded to a multiple of 512, ending with two zero blocks. The name is the
//! header's `prefix` + `/` + `name` (ustar), unless a preceding GNU `L` member or a pax
//! `x` member (`path=`) gives a longer one. Sizes are octal text, or base-256 with the
//! top bit set for members over 8 GiB. Each header carries a checksum of itself, which
//! is checked: a corrupt archive is refused, not half-read.

use std::collections::BTreeMap;

use tokio::io::{AsyncRead, AsyncReadExt};

const BLOCK: usize = 512;

/// A member's header, as the extractor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub size: u64,
    /// `'0'`/NUL regular file, `'5'` directory, others ignored by the extractor.
    pub kind: u8,
    /// pax extended attributes that applied to this member.
    pub pax: BTreeMap<String, String>,
}

impl Member {
    pub fn is_file(&self) -> bool {
        matches!(self.kind, b'0' | 0 | b'7')
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad checksum in the header of member {0:?}")]
    Checksum(String),
    #[error("bad number in a header field: {0:?}")]
    Number(String),
    #[error("truncated archive")]
    Truncated,
    #[error("bad pax header: {0}")]
    Pax(String),
}

pub struct TarReader<R> {
    inner: R,
    /// Bytes of the current member not yet read, and its padding after them.
    remaining: u64,
    padding: u64,
    global_pax: BTreeMap<String, String>,
}

fn field_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn parse_number(b: &[u8]) -> Result<u64, TarError> {
    if b.first().is_some_and(|&c| c & 0x80 != 0) {
        // base-256: big-endian, top bit of the first byte is the marker.
        let mut n: u64 = (b[0] & 0x7f) as u64;
        for &c in &b[1..] {
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(c as u64))
                .ok_or_else(|| TarError::Number(format!("{b:?}")))?;
        }
        return Ok(n);
    }
    let text = field_str(b);
    let t = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if t.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(t, 8).map_err(|_| TarError::Number(t.to_string()))
}

fn checksum_ok(h: &[u8; BLOCK]) -> Result<bool, TarError> {
    let stored = parse_number(&h[148..156])?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                b' ' as u64
            } else {
                b as u64
            }
        })
        .sum();
    Ok(sum == stored)
}

/// pax records: `"<len> <key>=<value>\n"`, repeated.
fn parse_pax(data: &[u8]) -> Result<BTreeMap<String, String>, TarError> {
    let mut out = BTreeMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| TarError::Pax("record without length".into()))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l| l > sp && l <= rest.len())
            .ok_or_else(|| TarError::Pax("bad record length".into()))?;
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        let eq = record
            .iter()
            .position(|&c| c == b'=')
            .ok_or_else(|| TarError::Pax("record without '='".into()))?;
        out.insert(
            String::from_utf8_lossy(&record[..eq]).into_owned(),
            String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
        );
        rest = &rest[len..];
    }
    Ok(out)
}

/// Longest GNU long name or pax header body we accept.
const MAX_META_MEMBER: u64 = 1 << 20;

impl<R: AsyncRead + Unpin> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            global_pax: BTreeMap::new(),
        }
    }

    async fn read_block(&mut self) -> Result<Option<[u8; BLOCK]>, TarError> {
        let mut b = [0u8; BLOCK];
        let mut got = 0;
        while got < BLOCK {
            let n = self.inner.read(&mut b[got..]).await?;
            if n == 0 {
                return if got == 0 {
                    Ok(None)
                } else {
                    Err(TarError::Truncated)
                };
            }
            got += n;
        }
        Ok(Some(b))
    }

    async fn skip(&mut self, mut n: u64) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.inner.read(&mut buf[..want]).await?;
            if got == 0 {
                return Err(TarError::Truncated);
            }
            n -= got as u64;
        }
        Ok(())
    }

    async fn read_whole(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        if size > MAX_META_MEMBER {
            return Err(TarError::Pax(format!("{size}-byte metadata member")));
        }
        let mut data = vec![0u8; size as usize];
        self.inner
            .read_exact(&mut data)
            .await
            .map_err(|_| TarError::Truncated)?;
        self.skip(size.div_ceil(BLOCK as u64) * BLOCK as u64 - size)
            .await?;
        Ok(data)
    }

    /// The next member's header; its bytes are then read with [`Self::read_chunk`]
    /// (whatever is left unread is skipped by the next call). `None` at the end.
    pub async fn next_member(&mut self) -> Result<Option<Member>, TarError> {
        self.skip(self.remaining + self.padding).await?;
        self.remaining = 0;
        self.padding = 0;
        let mut long_name: Option<String> = None;
        let mut pax: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let Some(h) = self.read_block().await? else {
                return Ok(None);
            };
            if h.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            let mut name = field_str(&h[0..100]);
            if !checksum_ok(&h)? {
                return Err(TarError::Checksum(name));
            }
            let size = parse_number(&h[124..136])?;
            let kind = h[156];
            match kind {
                b'L' => {
                    let data = self.read_whole(size).await?;
                    long_name = Some(field_str(&data));
                    continue;
                }
                b'x' => {
                    pax.extend(parse_pax(&self.read_whole(size).await?)?);
                    continue;
                }
                b'g' => {
                    let g = parse_pax(&self.read_whole(size).await?)?;
                    self.global_pax.extend(g);
                    continue;
                }
                _ => {}
            }
            if &h[257..262] == b"ustar" {
                let prefix = field_str(&h[345..500]);
                if !prefix.is_empty() {
                    name = format!("{prefix}/{name}");
                }
            }
            if let Some(l) = long_name.take() {
                name = l;
            }
            let mut all_pax = self.global_pax.clone();
            all_pax.extend(pax);
            if let Some(p) = all_pax.get("path") {
                name = p.clone();
            }
            let size = match all_pax.get("size") {
                Some(s) => s.parse().map_err(|_| TarError::Number(s.clone()))?,
                None => size,
            };
            let has_data = !matches!(kind, b'1' | b'2' | b'3' | b'4' | b'5' | b'6');
            if has_data {
                self.remaining = size;
                self.padding = size.div_ceil(BLOCK as u64) * BLOCK as u64 - size;
            }
            return Ok(Some(Member {
                name,
                size: if has_data { size } else { 0 },
                kind,
                pax: all_pax,
            }));
        }
    }

    /// Up to `max` of the current member's bytes; empty when it is all read.
    pub async fn read_chunk(&mut self, max: usize) -> Result<bytes::Bytes, TarError> {
        if self.remaining == 0 {
            return Ok(bytes::Bytes::new());
        }
        let want = (self.remaining.min(max as u64)) as usize;
        let mut buf = vec![0u8; want];
        let got = self.inner.read(&mut buf).await?;
        if got == 0 {
            return Err(TarError::Truncated);
        }
        buf.truncate(got);
        self.remaining -= got as u64;
        Ok(bytes::Bytes::from(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: u64, kind: u8) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| b as u64).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    fn member(out: &mut Vec<u8>, name: &str, data: &[u8], kind: u8) {
        out.extend_from_slice(&header(name, data.len() as u64, kind));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }

    async fn read_all(archive: Vec<u8>) -> Result<Vec<(String, Vec<u8>)>, TarError> {
        let mut r = TarReader::new(std::io::Cursor::new(archive));
        let mut out = Vec::new();
        while let Some(m) = r.next_member().await? {
            let mut data = Vec::new();
            loop {
                let c = r.read_chunk(7).await?;
                if c.is_empty() {
                    break;
                }
                data.extend_from_slice(&c);
            }
            out.push((m.name, data));
        }
        Ok(out)
    }

    #[tokio::test]
    async fn reads_members_long_names_and_pax_paths() {
        let mut a = Vec::new();
        member(&mut a, "c/one", b"first file", b'0');
        member(&mut a, "c/", b"", b'5');
        let long = format!("c/{}", "x".repeat(150));
        member(
            &mut a,
            "././@LongLink",
            format!("{long}\0").as_bytes(),
            b'L',
        );
        member(&mut a, "ignored", b"long-named", b'0');
        member(&mut a, "PaxHeader", b"19 path=c/pax-name\n", b'x');
        member(&mut a, "short", b"pax-named", b'0');
        a.extend_from_slice(&[0u8; 1024]);
        let got = read_all(a).await.unwrap();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["c/one", "c/", long.as_str(), "c/pax-name"]);
        assert_eq!(got[0].1, b"first file");
        assert_eq!(got[2].1, b"long-named");
        assert_eq!(got[3].1, b"pax-named");
    }

    #[tokio::test]
    async fn corrupt_and_truncated_archives_are_errors() {
        let mut a = Vec::new();
        member(&mut a, "c/one", b"data", b'0');
        let mut bad = a.clone();
        bad[0] = b'd';
        assert!(matches!(read_all(bad).await, Err(TarError::Checksum(_))));
        let short = a[..BLOCK + 2].to_vec();
        assert!(matches!(read_all(short).await, Err(TarError::Truncated)));
        assert!(read_all(vec![1u8; 100]).await.is_err());
    }
}
