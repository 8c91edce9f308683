//! An exchange ([`crate::exchange`]) over a byte stream: a TCP socket on a commune station's
//! LAN (the station hub, `doorstep hub`), or any reliable pipe an app opens. Each message is
//! framed as a 4-byte big-endian length and its bytes. Both sides run [`exchange_over`]; it
//! ends when both have said `Done`.
//!
//! The store is taken for each message only, so one store (the hub's) serves several phones at
//! once, and its sync with the server, between their messages.

use crate::error::{Error, Result};
use crate::exchange::{Exchange, ExchangeReport};
use crate::store::Store;
use std::io::{Read, Write};
use std::sync::{Mutex, MutexGuard};

/// The largest message read: far above a commune's day of signed runs (a `Runs` message holds
/// at most 1,000 operations).
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Run one side of an exchange over `stream` with the store behind `store`; returns what it
/// did. A stream that breaks, or a message that is not a Doorstep peer message, ends it with an
/// error; what was taken before stays taken (each run is applied whole).
pub fn exchange_over<S: Read + Write>(
    store: &Mutex<Store>,
    stream: &mut S,
) -> Result<ExchangeReport> {
    let mut x = Exchange::new(&lock(store))?;
    let hello = x.start(&lock(store))?;
    write_frame(stream, &hello)?;
    while !x.is_done() {
        let message = read_frame(stream)?;
        let out = x.receive(&mut lock(store), &message)?;
        for m in out {
            write_frame(stream, &m)?;
        }
    }
    Ok(x.report().clone())
}

/// Write one framed message.
pub fn write_frame<W: Write>(w: &mut W, message: &[u8]) -> Result<()> {
    let len = u32::try_from(message.len())
        .ok()
        .filter(|n| (*n as usize) <= MAX_FRAME_BYTES)
        .ok_or_else(|| Error::invalid("message", "a message of at most 64 MiB"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(message)?;
    w.flush()?;
    Ok(())
}

/// Read one framed message.
pub fn read_frame<R: Read>(r: &mut R) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(Error::invalid("message", "a message of at most 64 MiB"));
    }
    let mut message = vec![0u8; len];
    r.read_exact(&mut message)?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_huge_length_is_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut r = buf.as_slice();
        assert_eq!(read_frame(&mut r).unwrap(), b"hello");
        assert_eq!(read_frame(&mut r).unwrap(), b"");
        assert!(read_frame(&mut r).is_err(), "the stream ended");
        let huge = (u32::MAX).to_be_bytes();
        assert!(read_frame(&mut huge.as_slice()).is_err());
    }
}
