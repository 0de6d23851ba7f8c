//! HTTP/1.1 on one connection, one request at a time, in the VU's own task: the request goes out
//! in one write from a head built once per run, the answer's head is parsed with `httparse`, and
//! its body is read by `Content-Length`, chunked, or to the end of the connection (RFC 9112 §6.3).
//! There is no task, channel or header map per request, which is where a general-purpose client
//! spends most of its time on a fast local target.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::outcome::{FailureKind, Response};

/// The most a response head may take (hyper's default limit is about 400 KiB; API Gateway's
/// heads are well under 10 KiB).
const MAX_HEAD: usize = 64 * 1024;
/// Headers parsed per response head.
const MAX_HEADERS: usize = 100;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 4096;

/// One connection speaking HTTP/1.1.
pub struct H1<IO> {
    io: IO,
    /// Bytes read and not yet used.
    buf: Vec<u8>,
    /// Where the unused bytes in `buf` start.
    at: usize,
    /// The request being written.
    out: Vec<u8>,
    /// Whether the connection may carry another request.
    reusable: bool,
}

/// How a response's body is delimited.
enum Framing {
    None,
    Length(u64),
    Chunked,
    ToEof,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> H1<IO> {
    /// A connection over `io`.
    pub fn new(io: IO) -> H1<IO> {
        H1 {
            io,
            buf: Vec::with_capacity(READ_CHUNK),
            at: 0,
            out: Vec::new(),
            reusable: true,
        }
    }

    /// Whether another request may go out on this connection: it was kept alive, and the
    /// server has not closed it (or sent anything unasked) while it was idle.
    pub async fn is_open(&mut self) -> bool {
        if !self.reusable {
            return false;
        }
        let mut probe = [0u8; 1];
        let idle = poll_fn(|cx| {
            let mut read = ReadBuf::new(&mut probe);
            // Pending: nothing to read, the connection is idle and open. Anything else (an end,
            // an error, bytes nobody asked for) makes it unusable.
            Poll::Ready(Pin::new(&mut self.io).poll_read(cx, &mut read).is_pending())
        })
        .await;
        self.reusable = idle;
        idle
    }

    /// Sends `head` (the request line and headers up to `Content-Length: `) with `body`, and
    /// reads the whole answer.
    pub async fn send(&mut self, head: &[u8], body: &[u8]) -> Result<Response, FailureKind> {
        let start = std::time::Instant::now();
        self.reusable = false;
        self.out.clear();
        self.out.extend_from_slice(head);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        self.out.extend_from_slice(b"\r\n\r\n");
        self.out.extend_from_slice(body);
        self.io
            .write_all(&self.out)
            .await
            .map_err(|e| io_failure(&e))?;
        self.io.flush().await.map_err(|e| io_failure(&e))?;
        let sent = std::time::Instant::now();
        self.buf.clear();
        self.at = 0;
        self.fill().await?;
        let first_byte = std::time::Instant::now();

        let (status, framing, keep_alive) = self.read_head().await?;
        let body_bytes = match framing {
            Framing::None => 0,
            Framing::Length(n) => self.skip(n).await?,
            Framing::Chunked => self.read_chunked().await?,
            Framing::ToEof => self.read_to_end().await?,
        };
        // Bytes past the answer were not asked for: the connection is not reused.
        self.reusable = keep_alive && !matches!(framing, Framing::ToEof) && self.unread() == 0;
        Ok(Response {
            status,
            body_bytes,
            sending: sent - start,
            waiting: first_byte - sent,
            receiving: first_byte.elapsed(),
        })
    }

    fn unread(&self) -> usize {
        self.buf.len() - self.at
    }

    /// Reads more bytes into `buf`; an end of the connection here is a failure.
    async fn fill(&mut self) -> Result<(), FailureKind> {
        // What was used goes first, so that the buffer holds at most one head's worth however
        // long the answer (a chunked body, a stream of informational heads) goes on.
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        // Into the spare capacity: nothing is zeroed first.
        self.buf.reserve(READ_CHUNK);
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) => Err(FailureKind::Reset),
            Ok(_) => Ok(()),
            Err(e) => Err(io_failure(&e)),
        }
    }

    /// The final response's status, body framing and whether the connection stays open;
    /// informational (1xx) answers before it are passed over.
    async fn read_head(&mut self) -> Result<(u16, Framing, bool), FailureKind> {
        loop {
            let parsed = {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut headers);
                match response.parse(&self.buf[self.at..]) {
                    Ok(httparse::Status::Complete(used)) => {
                        let status = response.code.unwrap_or(0);
                        let version = response.version.unwrap_or(1);
                        Some((
                            used,
                            status,
                            head_framing(status, version, response.headers)?,
                        ))
                    }
                    Ok(httparse::Status::Partial) => None,
                    Err(_) => return Err(FailureKind::Protocol),
                }
            };
            match parsed {
                Some((used, status, (framing, keep_alive))) => {
                    self.at += used;
                    // 101 would switch protocols, which a POST here never asks for.
                    if (100..200).contains(&status) && status != 101 {
                        continue;
                    }
                    return Ok((status, framing, keep_alive));
                }
                None if self.unread() >= MAX_HEAD => return Err(FailureKind::Protocol),
                None => self.fill().await?,
            }
        }
    }

    /// Consumes `n` body bytes.
    async fn skip(&mut self, n: u64) -> Result<usize, FailureKind> {
        let mut left = n;
        loop {
            let take = left.min(self.unread() as u64);
            self.at += take as usize;
            left -= take;
            if left == 0 {
                return Ok(n as usize);
            }
            self.fill().await?;
        }
    }

    /// Consumes a chunked body and its trailers; returns the data's length.
    async fn read_chunked(&mut self) -> Result<usize, FailureKind> {
        let mut total = 0usize;
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.at..]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.at += used;
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.unread() < MAX_HEAD => {
                        self.fill().await?
                    }
                    _ => return Err(FailureKind::Protocol),
                }
            };
            if size == 0 {
                return self.skip_trailers().await.map(|()| total);
            }
            total += self.skip(size).await?;
            self.expect_crlf().await?;
        }
    }

    async fn expect_crlf(&mut self) -> Result<(), FailureKind> {
        while self.unread() < 2 {
            self.fill().await?;
        }
        if &self.buf[self.at..self.at + 2] != b"\r\n" {
            return Err(FailureKind::Protocol);
        }
        self.at += 2;
        Ok(())
    }

    /// Trailer lines up to and including the empty line.
    async fn skip_trailers(&mut self) -> Result<(), FailureKind> {
        loop {
            match self.buf[self.at..].windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.at += 2;
                    return Ok(());
                }
                Some(end) => self.at += end + 2,
                None if self.unread() >= MAX_HEAD => return Err(FailureKind::Protocol),
                None => self.fill().await?,
            }
        }
    }

    /// A body without a length: everything until the server closes.
    async fn read_to_end(&mut self) -> Result<usize, FailureKind> {
        let mut total = self.unread();
        self.at = self.buf.len();
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.io.read(&mut chunk).await {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(e) => return Err(io_failure(&e)),
            }
        }
    }
}

/// How the body of a response with these headers is delimited, and whether the connection
/// stays open after it.
fn head_framing(
    status: u16,
    version: u8,
    headers: &[httparse::Header<'_>],
) -> Result<(Framing, bool), FailureKind> {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    // HTTP/1.1 keeps connections open unless told not to; HTTP/1.0 closes unless told to keep.
    let mut keep_alive = version == 1;
    for header in headers {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            // Digits only (`+5` or `5, 5` would pass a looser parse).
            let digits = header.value.trim_ascii();
            let value = std::str::from_utf8(digits)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(FailureKind::Protocol)?;
            if length.is_some_and(|seen| seen != value) {
                return Err(FailureKind::Protocol);
            }
            length = Some(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            // Chunked when it is the last coding applied.
            chunked = header
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    keep_alive = true;
                }
            }
        }
    }
    // Both lengths given is how responses are smuggled: this one is read by Transfer-Encoding
    // (RFC 9112 §6.3), and the connection is not trusted with another. Nor is one that
    // switched protocols.
    if transfer_encoding && length.is_some() || status == 101 {
        keep_alive = false;
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::None
    } else if transfer_encoding {
        // Transfer-Encoding overrides Content-Length; a last coding other than chunked is read
        // to the end of the connection.
        if chunked {
            Framing::Chunked
        } else {
            Framing::ToEof
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::ToEof
    };
    Ok((framing, keep_alive))
}

/// The failure an I/O error on an open connection stands for.
fn io_failure(error: &std::io::Error) -> FailureKind {
    FailureKind::from_io(error).unwrap_or(FailureKind::Reset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

    const HEAD: &[u8] =
        b"POST /prod/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ";

    /// Sends `body` on a connection whose server answers each request with the next of
    /// `answers`, written in pieces of `piece` bytes; returns what each send gave and what the
    /// server read.
    async fn exchange(
        answers: &[&[u8]],
        piece: usize,
        close_after: bool,
    ) -> (Vec<Result<(u16, usize), FailureKind>>, Vec<bool>, String) {
        let (client, mut server) = duplex(1 << 16);
        let answers: Vec<Vec<u8>> = answers.iter().map(|a| a.to_vec()).collect();
        let count = answers.len();
        let serve = tokio::spawn(async move {
            let mut seen = Vec::new();
            for answer in answers {
                read_request(&mut server, &mut seen).await;
                // The client may stop reading (a refused head): later writes then fail.
                for part in answer.chunks(piece.max(1)) {
                    if server.write_all(part).await.is_err() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            }
            if close_after {
                drop(server);
                String::from_utf8(seen).unwrap()
            } else {
                // Keep the connection open until the client is done.
                let mut rest = Vec::new();
                let _ = server.read_to_end(&mut rest).await;
                String::from_utf8(seen).unwrap()
            }
        });
        let mut h1 = H1::new(client);
        let mut results = Vec::new();
        let mut open = Vec::new();
        for _ in 0..count {
            results.push(shape(h1.send(HEAD, b"{\"id\":\"a\"}").await));
            open.push(h1.reusable);
        }
        drop(h1);
        (results, open, serve.await.unwrap())
    }

    async fn read_request(server: &mut DuplexStream, seen: &mut Vec<u8>) {
        let start = seen.len();
        let mut byte = [0u8; 1];
        while !seen[start..].ends_with(b"{\"id\":\"a\"}") {
            server.read_exact(&mut byte).await.unwrap();
            seen.push(byte[0]);
        }
    }

    /// What the tests compare of an answer: its status and body length (not its timings).
    fn shape(result: Result<Response, FailureKind>) -> Result<(u16, usize), FailureKind> {
        result.map(|r| (r.status, r.body_bytes))
    }

    fn ok(status: u16, body_bytes: usize) -> Result<(u16, usize), FailureKind> {
        Ok((status, body_bytes))
    }

    #[tokio::test]
    async fn writes_one_request_with_its_length() {
        let (results, _, seen) = exchange(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            1024,
            false,
        )
        .await;
        assert_eq!(results, vec![ok(200, 2)]);
        assert_eq!(
            seen,
            "POST /prod/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 10\r\n\r\n{\"id\":\"a\"}"
        );
    }

    #[tokio::test]
    async fn reads_lengths_chunks_and_heads_in_any_pieces() {
        let answers: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n\
              A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
        ];
        for piece in [1, 3, 7, 1024] {
            let (results, open, _) = exchange(&answers, piece, false).await;
            assert_eq!(
                results,
                vec![ok(200, 5), ok(201, 13), ok(204, 0), ok(400, 0)],
                "pieces of {piece}"
            );
            assert_eq!(open, vec![true; 4], "pieces of {piece}");
        }
    }

    #[tokio::test]
    async fn a_body_without_length_ends_with_the_connection() {
        let (results, open, _) =
            exchange(&[b"HTTP/1.1 200 OK\r\n\r\nuntil the end"], 4, true).await;
        assert_eq!(results, vec![ok(200, 13)]);
        assert_eq!(open, vec![false]);
    }

    #[tokio::test]
    async fn connection_close_and_http_1_0_are_not_reused() {
        let cases: [(&[u8], bool); 3] = [
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                true,
            ),
        ];
        for (answer, reused) in cases {
            let (_, open, _) = exchange(&[answer], 1024, false).await;
            assert_eq!(open, vec![reused], "{}", String::from_utf8_lossy(answer));
        }
    }

    #[tokio::test]
    async fn both_lengths_or_a_switch_of_protocols_end_the_connection() {
        let (results, open, _) = exchange(
            &[
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
               2\r\nok\r\n0\r\n\r\n",
            ],
            1024,
            false,
        )
        .await;
        assert_eq!((results, open), (vec![ok(200, 2)], vec![false]));
        let (results, open, _) =
            exchange(&[b"HTTP/1.1 101 Switching Protocols\r\n\r\n"], 1024, false).await;
        assert_eq!((results, open), (vec![ok(101, 0)], vec![false]));
    }

    #[tokio::test]
    async fn a_cut_or_broken_answer_is_a_failure() {
        let cases: [(&[u8], FailureKind); 6] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
                FailureKind::Reset,
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Le", FailureKind::Reset),
            (b"NOT HTTP\r\n\r\n", FailureKind::Protocol),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
                FailureKind::Protocol,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                FailureKind::Protocol,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
                FailureKind::Protocol,
            ),
        ];
        for (answer, kind) in cases {
            let (results, _, _) = exchange(&[answer], 1024, true).await;
            assert_eq!(
                results,
                vec![Err(kind)],
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[tokio::test]
    async fn a_head_past_the_limit_is_refused_not_buffered() {
        let mut answer = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        answer.resize(answer.len() + MAX_HEAD + 10, b'a');
        let (results, _, _) = exchange(&[&answer], 8192, false).await;
        assert_eq!(results, vec![Err(FailureKind::Protocol)]);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_not_open() {
        let (client, mut server) = duplex(1024);
        let mut h1 = H1::new(client);
        let serve = tokio::spawn(async move {
            let mut seen = Vec::new();
            read_request(&mut server, &mut seen).await;
            server
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            server
        });
        assert_eq!(shape(h1.send(HEAD, b"{\"id\":\"a\"}").await), ok(200, 0));
        let server = serve.await.unwrap();
        assert!(h1.is_open().await, "an idle connection is open");
        drop(server);
        assert!(!h1.is_open().await, "a closed one is not");
    }

    #[tokio::test]
    async fn a_long_chunked_body_is_read_in_bounded_memory() {
        // 100,000 chunks of 10 bytes, with heads split across reads.
        let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..100_000 {
            answer.extend_from_slice(b"a\r\n0123456789\r\n");
        }
        answer.extend_from_slice(b"0\r\n\r\n");
        let (client, mut server) = duplex(1 << 16);
        let serve = tokio::spawn(async move {
            read_request(&mut server, &mut Vec::new()).await;
            for part in answer.chunks(4093) {
                server.write_all(part).await.unwrap();
            }
            server
        });
        let mut h1 = H1::new(client);
        assert_eq!(
            shape(h1.send(HEAD, b"{\"id\":\"a\"}").await),
            ok(200, 1_000_000)
        );
        assert!(h1.buf.capacity() <= 4 * READ_CHUNK, "{}", h1.buf.capacity());
        drop(serve.await.unwrap());
    }
}
