//! SMTP probe: connect to port 25, read the 220 banner, EHLO, note
//! STARTTLS, QUIT. No mail is ever sent.

use crate::dns::io_error;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use v6scope_model::{ErrorKind, Family, ProbeError, SmtpProbe};

/// Longest reply line accepted (RFC 5321 allows 512).
const MAX_LINE: usize = 1024;
/// Most lines accepted in one multi-line reply.
const MAX_LINES: usize = 64;

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Which addresses may be connected to: the prober's scan policy.
    pub(crate) policy: crate::policy::AddressPolicy,
    pub port: u16,
    pub connect_timeout: Duration,
    /// Whole conversation.
    pub deadline: Duration,
    pub helo_name: String,
}

/// A parsed SMTP reply: code and text lines.
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

async fn read_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<String, ProbeError> {
    let mut line = Vec::new();
    let mut limited = (&mut *reader).take(MAX_LINE as u64 + 1);
    let n = limited
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| io_error("reading SMTP reply", &e))?;
    if n == 0 {
        return Err(ProbeError::new(
            ErrorKind::Protocol,
            "connection closed before a complete reply",
        ));
    }
    if line.len() > MAX_LINE || !line.ends_with(b"\n") {
        return Err(ProbeError::new(ErrorKind::Protocol, "reply line too long"));
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

use tokio::io::AsyncReadExt;

/// Reads one (possibly multi-line) reply; garbage is a protocol error.
pub async fn read_reply<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<Reply, ProbeError> {
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        if lines.len() >= MAX_LINES {
            return Err(ProbeError::new(ErrorKind::Protocol, "reply has too many lines"));
        }
        let line = read_line(reader).await?;
        let bytes = line.as_bytes();
        if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
            return Err(ProbeError::new(
                ErrorKind::Protocol,
                format!("not an SMTP reply: {:?}", line.chars().take(80).collect::<String>()),
            ));
        }
        let this_code: u16 = line[..3].parse().expect("three digits");
        if *code.get_or_insert(this_code) != this_code {
            return Err(ProbeError::new(
                ErrorKind::Protocol,
                "reply code changes within a multi-line reply",
            ));
        }
        let more = bytes.get(3) == Some(&b'-');
        lines.push(line.get(4..).unwrap_or("").to_string());
        if !more {
            return Ok(Reply { code: this_code, lines });
        }
    }
}

pub async fn probe(address: IpAddr, config: &SmtpConfig) -> SmtpProbe {
    let mut result = SmtpProbe {
        address,
        family: Family::of(&address),
        connected: false,
        connect_ms: None,
        banner: None,
        banner_ok: false,
        ehlo_ok: false,
        starttls: false,
        error: None,
    };
    let deadline = config.deadline;
    if let Err(e) = match tokio::time::timeout(deadline, converse(&mut result, config)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ProbeError::new(
            ErrorKind::Timeout,
            format!("SMTP conversation did not finish within {} ms", deadline.as_millis()),
        )),
    } {
        result.error = Some(e);
    }
    result
}

async fn converse(result: &mut SmtpProbe, config: &SmtpConfig) -> Result<(), ProbeError> {
    config.policy.check(result.address)?;
    let socket = SocketAddr::new(result.address, config.port);
    let started = Instant::now();
    let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(socket))
        .await
        .map_err(|_| {
            ProbeError::new(
                ErrorKind::Timeout,
                format!(
                    "TCP connect to {socket}: no answer within {} ms",
                    config.connect_timeout.as_millis()
                ),
            )
        })?
        .map_err(|e| io_error(&format!("TCP connect to {socket}"), &e))?;
    result.connected = true;
    result.connect_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let banner = read_reply(&mut reader).await?;
    result.banner = Some(
        format!("{} {}", banner.code, banner.lines.join(" "))
            .chars()
            .take(256)
            .collect(),
    );
    result.banner_ok = banner.code == 220;
    if !result.banner_ok {
        return Err(ProbeError::new(
            ErrorKind::Protocol,
            format!("banner code {} instead of 220", banner.code),
        ));
    }
    write
        .write_all(format!("EHLO {}\r\n", config.helo_name).as_bytes())
        .await
        .map_err(|e| io_error("sending EHLO", &e))?;
    let ehlo = read_reply(&mut reader).await?;
    result.ehlo_ok = ehlo.code == 250;
    result.starttls = ehlo.lines.iter().any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
    });
    let _ = write.write_all(b"QUIT\r\n").await;
    let _ = tokio::time::timeout(Duration::from_secs(2), read_reply(&mut reader)).await;
    if !result.ehlo_ok {
        return Err(ProbeError::new(
            ErrorKind::Protocol,
            format!("EHLO answered {}", ehlo.code),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(input: &[u8]) -> Result<Reply, ProbeError> {
        let mut reader = BufReader::new(input);
        read_reply(&mut reader).await
    }

    #[tokio::test]
    async fn parses_multiline_ehlo() {
        let reply = parse(b"250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
            .await
            .unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.lines, vec!["mx.test", "PIPELINING", "STARTTLS"]);
    }

    #[tokio::test]
    async fn scan_policy_refuses_before_connecting() {
        use crate::policy::AddressPolicy;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = SmtpConfig {
            policy: AddressPolicy::public_only(Vec::new()),
            port: listener.local_addr().unwrap().port(),
            connect_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(2),
            helo_name: "v6scope.invalid".into(),
        };
        let result = probe("127.0.0.1".parse().unwrap(), &config).await;
        assert!(!result.connected);
        let e = result.error.expect("refused");
        assert_eq!(e.kind, ErrorKind::NotTestable);
        assert_eq!(e.message, "refused by scan policy: 127.0.0.1 is loopback (127.0.0.0/8)");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), listener.accept())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn garbage_banner_is_a_protocol_error() {
        let e = parse(b"SSH-2.0-OpenSSH\r\n").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        let e = parse(&[b'2'; 5000]).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        let e = parse(b"220-a\r\n221 b\r\n").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(parse(b"").await.is_err());
    }
}
