import type { GpsConfig } from '../config/agent-schema.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { GpsdSource } from './gpsd-source.ts';
import { NmeaSerialSource } from './nmea-source.ts';
import { ReplaySource } from './replay-source.ts';
import { StaticSource } from './static-source.ts';
import type { GpsSource } from './types.ts';

/** The GpsSource for `gps.source`; nothing is opened until its `start()`. */
export function createGpsSource(config: GpsConfig, deps: { clock: Clock; logger: Logger }): GpsSource {
  const logger = deps.logger.child({ part: 'gps', source: config.source });
  const { clock } = deps;
  switch (config.source) {
    case 'gpsd':
      return new GpsdSource({ host: config.host, port: config.port, clock, logger });
    case 'nmea':
      return new NmeaSerialSource({ device: config.device, baud: config.baud, clock, logger });
    case 'replay':
      return new ReplaySource({ file: config.file, rate: config.rate, loop: config.loop, clock, logger });
    case 'static':
      return new StaticSource({ latitude: config.latitude, longitude: config.longitude, uncertainty_m: config.uncertainty_m, clock, logger });
  }
}
