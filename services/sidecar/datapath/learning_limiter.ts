/**
 * How fast new guest addresses are learned through one VM port: a token bucket per port. A
 * guest sending from many new addresses at once (a flood of spoofed senders) gets `burst` of
 * them learned, then `perSecond`; the rest are dropped. Each flood is one episode, reported
 * once with its counts when it has been quiet for a while (and once a minute while it lasts),
 * never once per frame.
 *
 * Pure, with the clock passed in; arp_worker.ts asks it before learning and logs its reports.
 */

export interface LearningRate {
  /** New addresses learned per second per VM port, sustained. */
  perSecond: number;
  /** New addresses a VM port may have learned at once. */
  burst: number;
}

/**
 * A burst as large as the per-bridge table (a guest may fill it at once, e.g. when the sidecar
 * restarts) and one more a second: a real guest changes address rarely, while every learned
 * address costs route and neighbour writes (and the eviction of another).
 */
export const GUEST_LEARNING_RATE: LearningRate = { perSecond: 1, burst: 4 };

/** A flood episode ends after this long without a dropped address. */
export const FLOOD_QUIET_MS = 5000;
/** A flood still going on is reported this often. */
export const FLOOD_REPORT_EVERY_MS = 60_000;
/** Distinct dropped addresses counted per report (beyond this: "at least"). */
const DISTINCT_MAX = 4096;

/** What happened on one VM port during (part of) a flood. */
export interface FloodReport {
  port: number;
  /** Frames from new addresses that were not learned. */
  dropped: number;
  /** Distinct addresses among them (at most DISTINCT_MAX are counted). */
  addresses: number;
  /** New addresses learned meanwhile (within the rate). */
  learned: number;
  /** A few of the dropped addresses, for the operator. */
  examples: string[];
  since: number;
  until: number;
  /** True when the flood is still going on (a periodic report). */
  ongoing: boolean;
}

export interface LearningLimiter {
  /** A new guest address seen through `port`: true when it may be learned now. */
  allow(port: number, ip: string, now: number): boolean;
  /** Reports that are due: floods that ended, and floods going on for another period. */
  reports(now: number): FloodReport[];
  /** When the next report falls due; undefined when no flood is going on. */
  nextReportAt(): number | undefined;
  /** Forgets the ports not in `ports` (unplugged VM ports). */
  keepPorts(ports: readonly number[]): void;
}

interface Episode {
  since: number;
  lastDrop: number;
  dropped: number;
  learned: number;
  distinct: Set<string>;
  examples: string[];
}

interface PortState {
  tokens: number;
  at: number;
  episode?: Episode;
}

export function createLearningLimiter(rate: LearningRate): LearningLimiter {
  const ports = new Map<number, PortState>();
  const report = (port: number, episode: Episode, until: number, ongoing: boolean) => ({
    port,
    dropped: episode.dropped,
    addresses: episode.distinct.size,
    learned: episode.learned,
    examples: episode.examples,
    since: episode.since,
    until,
    ongoing,
  });
  const dueAt = (episode: Episode) =>
    Math.min(episode.lastDrop + FLOOD_QUIET_MS, episode.since + FLOOD_REPORT_EVERY_MS);
  return {
    allow(port, ip, now) {
      let state = ports.get(port);
      if (!state) ports.set(port, state = { tokens: rate.burst, at: now });
      const elapsed = Math.max(0, now - state.at);
      state.tokens = Math.min(rate.burst, state.tokens + elapsed * rate.perSecond / 1000);
      state.at = now;
      const { episode } = state;
      if (state.tokens >= 1) {
        state.tokens -= 1;
        if (episode) episode.learned++;
        return true;
      }
      const current = episode ??
        (state.episode = {
          since: now,
          lastDrop: now,
          dropped: 0,
          learned: 0,
          distinct: new Set(),
          examples: [],
        });
      current.dropped++;
      current.lastDrop = now;
      if (current.distinct.size < DISTINCT_MAX) current.distinct.add(ip);
      if (current.examples.length < 3 && !current.examples.includes(ip)) {
        current.examples.push(ip);
      }
      return false;
    },
    reports(now) {
      const due: FloodReport[] = [];
      for (const [port, state] of ports) {
        const { episode } = state;
        if (!episode || dueAt(episode) > now) continue;
        if (now - episode.lastDrop >= FLOOD_QUIET_MS) {
          // Nothing new since the last periodic report: the flood just ended with it.
          if (episode.dropped > 0) due.push(report(port, episode, episode.lastDrop, false));
          state.episode = undefined;
        } else {
          due.push(report(port, episode, now, true));
          state.episode = {
            since: now,
            lastDrop: episode.lastDrop,
            dropped: 0,
            learned: 0,
            distinct: new Set(),
            examples: [],
          };
        }
      }
      return due;
    },
    nextReportAt() {
      let earliest: number | undefined;
      for (const state of ports.values()) {
        if (!state.episode) continue;
        const at = dueAt(state.episode);
        if (earliest === undefined || at < earliest) earliest = at;
      }
      return earliest;
    },
    keepPorts(kept) {
      for (const port of [...ports.keys()]) if (!kept.includes(port)) ports.delete(port);
    },
  };
}
