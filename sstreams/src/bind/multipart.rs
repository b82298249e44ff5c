//! Splitting a multipart response body into messages (`http_multipart_ss_in`)
//!
//! A `multipart/form-data` or `multipart/related` response is delivered as a group of
//! messages, one per part, as in C: a zero-length `RELATED_START` rx when the headers arrive,
//! then each part's bytes (its part headers included, as C delivers them) with SOM on its
//! first chunk and EOM on its last, the last part's EOM also carrying `RELATED_END`.
//! RFC 2046 framing: the preamble before the first delimiter and the epilogue after the
//! closing one are dropped (C passes the preamble on as data); a body that ends without the
//! closing delimiter ends the group anyway, with a zero-length rx closing the open part.

use bytes::{Bytes, BytesMut};
use sstreams_core::stream::PayloadFlags;

/// The boundary of a multipart `content-type` the splitter handles, if it is one
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    let kind = kind.trim().to_ascii_lowercase();
    if kind != "multipart/form-data" && kind != "multipart/related" {
        return None;
    }
    params.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Longest delimiter line tail held while looking for its line end (RFC 5322 line length)
const MAX_LINE: usize = 998;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the first delimiter
    Preamble,
    /// After a delimiter: `--` closes, otherwise the line ends and a part starts
    AfterDelimiter,
    /// In a part; `som` until its first chunk has gone out
    Part { som: bool },
    /// After the closing delimiter
    Done,
}

/// A streaming splitter of one multipart body into messages
#[derive(Debug)]
pub(crate) struct Splitter {
    /// `\r\n--boundary`
    delimiter: Vec<u8>,
    buf: BytesMut,
    phase: Phase,
    /// The end of the part before the delimiter just seen: its flags wait for what follows
    held: Option<(Bytes, PayloadFlags)>,
}

impl Splitter {
    /// A splitter for parts separated by `boundary`
    pub(crate) fn new(boundary: &str) -> Self {
        Self {
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            buf: BytesMut::new(),
            phase: Phase::Preamble,
            held: None,
        }
    }

    /// Takes the next body bytes; returns the rx to deliver, in order
    pub(crate) fn push(&mut self, data: &[u8]) -> Vec<(Bytes, PayloadFlags)> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        self.buf.extend_from_slice(data);
        loop {
            match self.phase {
                Phase::Preamble => {
                    // The first delimiter may open the body, without its CRLF.
                    let dashes = &self.delimiter[2..];
                    match find(&self.buf, dashes) {
                        Some(i) => {
                            let _ = self.buf.split_to(i + dashes.len());
                            self.phase = Phase::AfterDelimiter;
                        }
                        None => {
                            let keep = dashes.len() - 1;
                            let drop = self.buf.len().saturating_sub(keep);
                            let _ = self.buf.split_to(drop);
                            return out;
                        }
                    }
                }
                Phase::AfterDelimiter => {
                    if self.buf.len() < 2 {
                        return out;
                    }
                    if self.buf.starts_with(b"--") {
                        if let Some((data, flags)) = self.held.take() {
                            out.push((data, flags | PayloadFlags::RELATED_END));
                        }
                        self.buf.clear();
                        self.phase = Phase::Done;
                        return out;
                    }
                    // Transport padding may come before the line end.
                    let Some(i) = find(&self.buf, b"\r\n") else {
                        // Padding longer than a line is not padding; keep memory bounded.
                        if self.buf.len() > MAX_LINE {
                            let _ = self.buf.split_to(self.buf.len() - 1);
                        }
                        return out;
                    };
                    let _ = self.buf.split_to(i + 2);
                    out.extend(self.held.take());
                    self.phase = Phase::Part { som: true };
                }
                Phase::Part { som } => {
                    let flags = if som {
                        PayloadFlags::SOM
                    } else {
                        PayloadFlags::empty()
                    };
                    if let Some(i) = find(&self.buf, &self.delimiter) {
                        let data = self.buf.split_to(i).freeze();
                        let _ = self.buf.split_to(self.delimiter.len());
                        self.held = Some((data, flags | PayloadFlags::EOM));
                        self.phase = Phase::AfterDelimiter;
                        continue;
                    }
                    // Keep what could be the start of a delimiter split across chunks.
                    let safe = self.buf.len().saturating_sub(self.delimiter.len() - 1);
                    if safe > 0 {
                        out.push((self.buf.split_to(safe).freeze(), flags));
                        self.phase = Phase::Part { som: false };
                    }
                    return out;
                }
                Phase::Done => return out,
            }
        }
    }

    /// The body ended: closes the group if the closing delimiter never came
    pub(crate) fn finish(&mut self) -> Vec<(Bytes, PayloadFlags)> {
        let end = PayloadFlags::EOM | PayloadFlags::RELATED_END;
        let out = match self.phase {
            Phase::Done => Vec::new(),
            Phase::Preamble => vec![(Bytes::new(), PayloadFlags::RELATED_END)],
            Phase::AfterDelimiter => {
                let (data, flags) = self
                    .held
                    .take()
                    .unwrap_or((Bytes::new(), PayloadFlags::EOM));
                vec![(data, flags | PayloadFlags::RELATED_END)]
            }
            Phase::Part { som } => {
                let data = self.buf.split().freeze();
                let flags = if som { end | PayloadFlags::SOM } else { end };
                vec![(data, flags)]
            }
        };
        self.phase = Phase::Done;
        out
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOM: PayloadFlags = PayloadFlags::SOM;
    const EOM: PayloadFlags = PayloadFlags::EOM;
    const END: PayloadFlags = PayloadFlags::RELATED_END;

    const BODY: &[u8] = b"preamble\r\n--sep\r\nContent-Type: a\r\n\r\n{\"a\":1}\r\n--sep  \r\n\
        Content-Type: b\r\n\r\nsec\r\n-ond\r\n--sep--\r\nepilogue";

    /// Messages as (bytes, SOM, EOM, RELATED_END) after merging the chunks of each
    fn messages(pieces: &[(Bytes, PayloadFlags)]) -> Vec<(Vec<u8>, PayloadFlags)> {
        let mut out: Vec<(Vec<u8>, PayloadFlags)> = Vec::new();
        for (data, flags) in pieces {
            match out.last_mut() {
                Some((d, f)) if !f.contains(EOM) => {
                    assert!(!flags.contains(SOM), "SOM inside a message: {pieces:?}");
                    d.extend_from_slice(data);
                    *f |= *flags;
                }
                _ => {
                    assert!(flags.contains(SOM), "message without SOM: {pieces:?}");
                    out.push((data.to_vec(), *flags));
                }
            }
        }
        out
    }

    #[test]
    fn boundary_from_content_type() {
        assert_eq!(
            boundary("multipart/related; type=x; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(
            boundary("Multipart/Form-Data;BOUNDARY=xyz").as_deref(),
            Some("xyz")
        );
        assert_eq!(boundary("multipart/mixed; boundary=xyz"), None);
        assert_eq!(boundary("text/plain"), None);
        assert_eq!(boundary("multipart/related; boundary="), None);
    }

    #[test]
    fn parts_become_messages_whatever_the_chunking() {
        let expected = vec![
            (b"Content-Type: a\r\n\r\n{\"a\":1}".to_vec(), SOM | EOM),
            (
                b"Content-Type: b\r\n\r\nsec\r\n-ond".to_vec(),
                SOM | EOM | END,
            ),
        ];
        for size in 1..=BODY.len() {
            let mut s = Splitter::new("sep");
            let mut pieces = Vec::new();
            for chunk in BODY.chunks(size) {
                pieces.extend(s.push(chunk));
            }
            pieces.extend(s.finish());
            assert_eq!(messages(&pieces), expected, "chunks of {size}");
        }
    }

    #[test]
    fn body_opening_with_the_delimiter_and_empty_parts() {
        let mut s = Splitter::new("b");
        let pieces = s.push(b"--b\r\n\r\n--b\r\nx\r\n--b--");
        assert_eq!(
            pieces,
            [
                (Bytes::new(), SOM | EOM),
                (Bytes::from_static(b"x"), SOM | EOM | END)
            ]
        );
        assert_eq!(s.finish(), []);
        assert_eq!(s.push(b"more"), []);
    }

    #[test]
    fn truncated_bodies_still_end_the_group() {
        let mut s = Splitter::new("b");
        assert_eq!(s.push(b"no delimiter at all"), []);
        assert_eq!(s.finish(), [(Bytes::new(), END)]);

        let mut s = Splitter::new("b");
        let mut pieces = s.push(b"--b\r\npart without end");
        pieces.extend(s.finish());
        assert_eq!(
            messages(&pieces),
            [(b"part without end".to_vec(), SOM | EOM | END)]
        );

        let mut s = Splitter::new("b");
        let mut pieces = s.push(b"--b\r\nlast\r\n--b");
        pieces.extend(s.finish());
        assert_eq!(messages(&pieces), [(b"last".to_vec(), SOM | EOM | END)]);
    }
}
