import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryOutboxStore } from '../../../src/outbox/memory-store.ts';
import { SqliteOutboxStore } from '../../../src/outbox/sqlite-store.ts';
import { outboxStoreContract } from './store-contract.ts';

outboxStoreContract('MemoryOutboxStore', () => {
  const store = new MemoryOutboxStore();
  store.open();
  return { store };
});

outboxStoreContract('SqliteOutboxStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-outbox-'));
  const path = join(dir, 'outbox.db');
  let store = new SqliteOutboxStore({ path });
  store.open();
  return {
    store,
    reopen: () => {
      store.close();
      store = new SqliteOutboxStore({ path });
      store.open();
      return store;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
});
