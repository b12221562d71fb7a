import { execFile } from 'node:child_process';
import { closeSync, constants, createReadStream, openSync } from 'node:fs';
import { isatty, ReadStream as TtyReadStream } from 'node:tty';
import type { Readable } from 'node:stream';

/**
 * A serial GPS without a native module. `serialport` would need a compiled addon per architecture (arm64,
 * armv7, x64) and breaks the single-file binary; a serial port is a tty, so `stty` (coreutils, on every
 * Linux) sets its speed and raw mode, and Node reads it like any tty.
 *
 * The read side is `tty.ReadStream` on a non-blocking descriptor, not `fs.createReadStream`: an fs stream
 * reads in libuv's 4-thread pool with a blocking read(2) that cannot be cancelled, so a quiet receiver would
 * pin a pool thread and keep `stop()` (and process exit) waiting. A tty stream is polled by the event loop
 * and closes at once. An unplugged USB receiver (or a closed pty) makes the read fail with EIO: the stream
 * errors and closes, and the caller reopens.
 */

/** stty arguments: speed, raw (no line editing, no signals), no echo, ignore modem lines (no DCD on GPS HATs). */
export function sttyArgs(device: string, baud: number): string[] {
  return ['-F', device, String(baud), 'raw', '-echo', 'clocal', 'cread'];
}

export function configureSerial(device: string, baud: number, stty = 'stty', timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(stty, sttyArgs(device, baud), { timeout: timeoutMs }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`stty ${device} ${baud}: ${String(stderr).trim() || error.message}`));
      else resolve();
    });
  });
}

/** Opens a device for reading: a tty stream for ttys; a plain stream for FIFOs and files (tests, tools). */
export function openSerialStream(device: string): Readable {
  const fd = openSync(device, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  if (isatty(fd)) {
    const stream = new TtyReadStream(fd);
    // libuv reopens a pty slave under a new descriptor (so that non-blocking mode is its own) and closes only
    // that one; then ours is a leftover to close now. A real serial port it uses as is, and closes itself.
    const handleFd = (stream as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (handleFd !== undefined && handleFd >= 0 && handleFd !== fd) closeSync(fd);
    return stream;
  }
  return createReadStream('', { fd, autoClose: true });
}
