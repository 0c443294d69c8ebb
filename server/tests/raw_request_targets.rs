//! Request lines with raw (not %-encoded) bytes of 0x80 and above, through the real
//! binaries: Swift takes a UTF-8 name sent unquoted and answers 412 to bytes that are
//! not UTF-8, and so must Ringsmith's proxy, on keep-alive connections whose earlier
//! requests carry bodies that look like such request lines (which must reach the object
//! untouched). The same conversation runs against Swift's proxy over the same storage
//! servers, which gives the same answers.

mod proxy_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use proxy_common::{Cluster, Storage};

/// One keep-alive connection to a proxy.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Conn {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            host: addr.to_string(),
        }
    }

    /// Sends `head_start` (a request line and headers, no blank line) with `Host`, then
    /// the body as given (already framed by the caller's headers), and reads the answer.
    fn send(&mut self, method: &str, target: &[u8], headers: &str, body: &[u8]) -> Answer {
        let mut req = method.as_bytes().to_vec();
        req.push(b' ');
        req.extend_from_slice(target);
        req.extend_from_slice(
            format!(" HTTP/1.1\r\nHost: {}\r\n{headers}\r\n", self.host).as_bytes(),
        );
        req.extend_from_slice(body);
        self.writer.write_all(&req).unwrap();
        self.read_answer(method == "HEAD")
    }

    fn read_answer(&mut self, head_only: bool) -> Answer {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no status line: {line:?}"))
            .parse()
            .unwrap();
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            self.reader.read_line(&mut l).unwrap();
            if l == "\r\n" || l.is_empty() {
                break;
            }
            let (k, v) = l.trim_end().split_once(':').unwrap();
            headers.push((k.to_string(), v.trim().to_string()));
        }
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 204 || status == 304 {
            return answer;
        }
        if let Some(len) = answer.header("content-length") {
            let mut body = vec![0; len.parse().unwrap()];
            self.reader.read_exact(&mut body).unwrap();
            answer.body = body;
        } else if answer
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                answer.body.extend_from_slice(&chunk[..size]);
            }
        }
        answer
    }
}

fn token(conn: &mut Conn) -> String {
    let a = conn.send(
        "GET",
        b"/auth/v1.0",
        "X-Auth-User: test:tester\r\nX-Auth-Key: testing\r\n",
        b"",
    );
    assert_eq!(a.status, 200);
    a.header("x-auth-token").unwrap().to_string()
}

/// The whole conversation on one connection; `tag` keeps the two proxies' names apart.
fn converse(addr: &str, tag: &str) {
    let mut c = Conn::open(addr);
    let tok = token(&mut c);
    let auth = format!("X-Auth-Token: {tok}\r\n");
    let name = format!("caf\u{e9}-\u{20ac}-{tag}");
    let raw_container = format!("/v1/AUTH_test/{name}").into_bytes();

    let a = c.send(
        "PUT",
        &raw_container,
        &format!("{auth}Content-Length: 0\r\n"),
        b"",
    );
    assert_eq!(
        a.status, 201,
        "{tag}: PUT of a container named in raw UTF-8"
    );

    // A body that looks like a request line with raw bytes, after a raw request line:
    // it must be stored as sent.
    let lookalike = b"GET /v1/AUTH_test/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n\xc3\xa9";
    let mut obj = raw_container.clone();
    obj.extend_from_slice("/\u{f8}bject".as_bytes());
    let a = c.send(
        "PUT",
        &obj,
        &format!("{auth}Content-Length: {}\r\n", lookalike.len()),
        lookalike,
    );
    assert_eq!(
        a.status, 201,
        "{tag}: PUT of an object with a Content-Length body"
    );

    // The same bytes as a chunked body, with a chunk boundary inside the lookalike.
    let mut chunked = Vec::new();
    for part in [&lookalike[..9], &lookalike[9..]] {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let mut obj2 = raw_container.clone();
    obj2.extend_from_slice(b"/chunked");
    let a = c.send(
        "PUT",
        &obj2,
        &format!("{auth}Transfer-Encoding: chunked\r\n"),
        &chunked,
    );
    assert_eq!(a.status, 201, "{tag}: chunked PUT");

    // Bytes that are not UTF-8: Swift's 412.
    let a = c.send("GET", b"/v1/AUTH_test/\xa9\x82\xe2", &auth, b"");
    assert_eq!(a.status, 412, "{tag}: raw invalid UTF-8");
    assert_eq!(a.body, b"Invalid UTF8 or contains NULL", "{tag}");

    // Everything reads back, raw and quoted, on the same connection.
    for target in [obj.clone(), obj2.clone()] {
        let a = c.send("GET", &target, &auth, b"");
        assert_eq!(
            a.status,
            200,
            "{tag}: GET {}",
            String::from_utf8_lossy(&target)
        );
        assert_eq!(a.body, lookalike, "{tag}: the body is stored as sent");
    }
    let quoted = format!("/v1/AUTH_test/caf%C3%A9-%E2%82%AC-{tag}/%C3%B8bject");
    let a = c.send("GET", quoted.as_bytes(), &auth, b"");
    assert_eq!(a.status, 200, "{tag}: the quoted name is the same object");
    assert_eq!(a.body, lookalike);

    let a = c.send("GET", &raw_container, &auth, b"");
    assert_eq!(a.status, 200, "{tag}: listing");
    assert_eq!(a.body, "chunked\n\u{f8}bject\n".as_bytes(), "{tag}");
    let a = c.send("GET", b"/v1/AUTH_test", &auth, b"");
    let listing = String::from_utf8(a.body).unwrap();
    assert!(
        listing.lines().any(|l| l == name),
        "{tag}: the account listing names the container: {listing}"
    );

    for target in [obj, obj2, raw_container] {
        let a = c.send("DELETE", &target, &auth, b"");
        assert_eq!(a.status, 204, "{tag}: DELETE");
    }
}

#[test]
fn raw_utf8_and_invalid_bytes_in_request_lines() {
    let mut cluster = Cluster::start_with(Storage::Ringsmith, 1, "");
    let ours = format!("127.0.0.1:{}", cluster.proxy_port);
    converse(&ours, "ringsmith");
    let swift = format!("127.0.0.1:{}", cluster.start_swift_proxy());
    converse(&swift, "swift");
}
