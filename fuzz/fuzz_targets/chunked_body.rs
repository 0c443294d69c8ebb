//! The object server's hand-read request bodies: the chunked framing of a multiphase PUT's
//! commit phase (`mime::ChunkDecoder`) and the MIME document of that PUT (`MimeReader`).
//! A body encoded from known parts, delivered in arbitrary pieces, decodes to those parts;
//! arbitrary bytes decode the same whether they arrive at once or piece by piece.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringsmith_server::object::mime::{part_header, ChunkDecoder, ChunkStep, MimeReader};

/// `body` in pieces of growing, then repeating, lengths (a slow, irregular sender).
fn pieces(body: &[u8]) -> Vec<Vec<u8>> {
    const LENGTHS: [usize; 6] = [1, 2, 3, 5, 8, 13];
    let mut out = Vec::new();
    let mut rest = body;
    for n in LENGTHS.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = (*n).min(rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    out
}

#[derive(Debug, PartialEq)]
enum Outcome {
    End,
    Error,
    Incomplete,
}

/// Feeds the pieces to the chunk decoder as a connection would deliver them.
fn dechunk(pieces: &[Vec<u8>]) -> (Vec<u8>, Outcome) {
    let mut decoder = ChunkDecoder::default();
    let mut buf = Vec::new();
    let mut data = Vec::new();
    let mut next = pieces.iter();
    loop {
        match decoder.decode(&mut buf) {
            Ok(ChunkStep::Data(d)) => {
                assert!(!d.is_empty(), "an empty data step");
                data.extend_from_slice(&d);
            }
            Ok(ChunkStep::End) => return (data, Outcome::End),
            Err(_) => return (data, Outcome::Error),
            Ok(ChunkStep::NeedMore) => match next.next() {
                Some(p) => buf.extend_from_slice(p),
                None => return (data, Outcome::Incomplete),
            },
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    })
}

type Part = (Vec<(String, String)>, Vec<u8>);

/// Reads a MIME document delivered in pieces; `None` when the reader refuses it.
fn read_mime(boundary: &str, pieces: Vec<Vec<u8>>) -> Option<Vec<Part>> {
    let stream =
        futures_util::stream::iter(pieces.into_iter().map(|p| Ok::<_, String>(Bytes::from(p))));
    let mut reader = MimeReader::new(stream, boundary, Duration::from_secs(60));
    runtime().block_on(async {
        let mut parts = Vec::new();
        while let Some(headers) = reader.next_part().await.ok()? {
            let mut data = Vec::new();
            while let Some(chunk) = reader.read_chunk().await.ok()? {
                assert!(!chunk.is_empty());
                data.extend_from_slice(&chunk);
            }
            parts.push((headers, data));
        }
        Some(parts)
    })
}

/// The input as raw chunked framing: the same outcome at once or piece by piece.
fn raw_chunked(data: &[u8]) {
    let whole = dechunk(&[data.to_vec()]);
    assert_eq!(dechunk(&pieces(data)), whole);
}

/// The input's `|`-separated pieces sent as chunks, with or without extensions, and
/// trailers: what was sent is what is decoded.
fn encoded_chunks(data: &[u8]) {
    for extension in ["", ";name=value"] {
        let mut body = Vec::new();
        let mut want = Vec::new();
        for c in data.split(|&b| b == b'|').filter(|c| !c.is_empty()) {
            body.extend_from_slice(format!("{:x}{extension}\r\n", c.len()).as_bytes());
            body.extend_from_slice(c);
            body.extend_from_slice(b"\r\n");
            want.extend_from_slice(c);
        }
        body.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
        assert_eq!(dechunk(&pieces(&body)), (want, Outcome::End));
    }
}

const BOUNDARY: &str = "bnd";

/// The input's NUL-separated parts as a MIME document: a first line of `;`-separated
/// `name: value` headers, then the data. What the proxy sends reads back as it was.
fn mime_document(data: &[u8]) {
    let delimiter = format!("\r\n--{BOUNDARY}");
    let token = |s: &str| !s.contains(['\r', '\n']) && s.trim() == s;
    let parts: Vec<Part> = data
        .split(|&b| b == 0)
        .map(|seg| {
            let (head, body) = match seg.iter().position(|&b| b == b'\n') {
                Some(p) => (&seg[..p], &seg[p + 1..]),
                None => (seg, &[][..]),
            };
            let headers = String::from_utf8_lossy(head)
                .split(';')
                .filter_map(|h| h.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, v)| !k.is_empty() && token(k) && token(v))
                .collect();
            (headers, body.to_vec())
        })
        .filter(|(_, body)| {
            !body
                .windows(delimiter.len())
                .any(|w| w == delimiter.as_bytes())
        })
        .collect();
    let mut doc = Vec::new();
    for (headers, body) in &parts {
        doc.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        for (k, v) in headers {
            doc.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        doc.extend_from_slice(b"\r\n");
        doc.extend_from_slice(body);
        doc.extend_from_slice(b"\r\n");
    }
    doc.extend_from_slice(format!("--{BOUNDARY}--").as_bytes());
    let got = read_mime(BOUNDARY, pieces(&doc)).expect("a well-formed document reads");
    assert_eq!(got.len(), parts.len());
    for ((got_headers, got_body), (headers, body)) in got.iter().zip(&parts) {
        assert_eq!(got_body, body);
        for (k, _) in headers {
            // Of duplicate names, the first is the one found.
            let first = headers.iter().find(|(k2, _)| k2.eq_ignore_ascii_case(k));
            assert_eq!(
                part_header(got_headers, k),
                first.map(|(_, v)| v.as_str()),
                "{k}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    raw_chunked(data);
    encoded_chunks(data);
    // Arbitrary bytes as a MIME body: refused or read, never a panic.
    let _ = read_mime(BOUNDARY, pieces(data));
    mime_document(data);
});
