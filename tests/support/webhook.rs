//! A webhook (Slack-style) endpoint for `--notify` tests, on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

/// A one-shot HTTP listener that hands over the body of the request it gets.
pub fn listener() -> (String, mpsc::Receiver<String>, TcpListener) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/T000/B000/XXXX", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    let server = l.try_clone().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = server.accept() {
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .unwrap();
            tx.send(String::from_utf8(body).unwrap()).unwrap();
        }
    });
    (url, rx, l)
}
