// Progress bars of long tasks: the transfers strip above the graph (image
// pulls per layer, the context transfer, export per layer) and the bars in
// the node details panel. A task without a known total shows its byte
// count on a striped, indeterminate bar until it finishes.

import { memo } from 'preact/compat';
import { formatBytes } from '../store';
import type { ProgressItem, Transfer, TransferKind } from '../types';

/** `1.2 MiB / 4.0 MiB`, or only the amount done while the total is unknown. */
export function formatAmount(item: ProgressItem): string {
  const amount = (count: number) => (item.unit === 'B' ? formatBytes(count) : `${count} ${item.unit}`);
  if (item.total == null) return amount(item.current);
  return `${amount(item.current)} / ${amount(item.total)}`;
}

/** Share done from 0 to 100, or null without a total; a total of 0 counts as done. */
export function percentDone(item: ProgressItem): number | null {
  if (item.total == null) return null;
  if (item.total === 0) return 100;
  return Math.min(100, (item.current / item.total) * 100);
}

/** How a bar is drawn: a finished task, a share of a known total, or an unknown total. */
export function barState(item: ProgressItem): 'done' | 'determinate' | 'indeterminate' {
  if (item.done) return 'done';
  return item.total == null ? 'indeterminate' : 'determinate';
}

export function ProgressBar(props: { item: ProgressItem; label?: string }) {
  const { item } = props;
  const state = barState(item);
  const share = percentDone(item);
  const width = state === 'determinate' ? share! : 100;
  return (
    <div class={`progress progress-${state}`} data-testid="progress" data-progress-id={item.id} data-state={state}>
      <span class="progress-label">{props.label ?? item.label}</span>
      <span
        class="progress-track"
        role="progressbar"
        aria-label={props.label ?? item.label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={share == null ? undefined : Math.round(share)}
      >
        <span class="progress-fill" style={{ width: `${width}%` }} />
      </span>
      <span class="progress-amount" data-testid="progress-amount">
        {formatAmount(item)}
      </span>
    </div>
  );
}

const KIND_ORDER: TransferKind[] = ['pull', 'context', 'export', 'other'];
const KIND_TITLES: Record<TransferKind, string> = {
  pull: 'pull',
  context: 'context transfer',
  export: 'export',
  other: 'transfer',
};

interface TransferGroup {
  key: string;
  kind: TransferKind;
  title: string;
  transfers: Transfer[];
}

/** Groups transfers by kind (pulls, context, export, others) and then by phase, in start order within each. */
export function groupTransfers(transfers: Iterable<Transfer>): TransferGroup[] {
  const groups = new Map<string, TransferGroup>();
  for (const transfer of transfers) {
    const key = `${transfer.kind}\u0000${transfer.phase ?? ''}`;
    let group = groups.get(key);
    if (!group) {
      const title = transfer.phase_name ?? KIND_TITLES[transfer.kind];
      group = { key, kind: transfer.kind, title, transfers: [] };
      groups.set(key, group);
    }
    group.transfers.push(transfer);
  }
  return [...groups.values()].sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind));
}

/**
 * The build's transfers above the graph; nothing when the build has none.
 * Memoized on `version`, the store's `transfersVersion`, so frames that
 * change no transfer skip it.
 */
export const TransfersStrip = memo(function TransfersStrip(props: { transfers: Map<string, Transfer>; version: number }) {
  const groups = groupTransfers(props.transfers.values());
  if (groups.length === 0) return null;
  return (
    <section class="transfers" data-testid="transfers">
      {groups.map((group) => (
        <div class="transfer-group" key={group.key} data-kind={group.kind}>
          <h4>{group.title}</h4>
          {group.transfers.map((transfer) => (
            <ProgressBar key={transfer.key} item={transfer} />
          ))}
        </div>
      ))}
    </section>
  );
});

/** The bars of one node's tasks, for the details panel. */
export function NodeProgress(props: { items: ProgressItem[] }) {
  if (props.items.length === 0) return null;
  return (
    <section class="node-progress" data-testid="node-progress">
      <h4>Progress</h4>
      {props.items.map((item) => (
        <ProgressBar key={item.id} item={item} />
      ))}
    </section>
  );
}
