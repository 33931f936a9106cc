/** Cross-field checks of NFR rules: windows the metrics can fill, and actions a service can take. */
import { parseNfrRule, type NfrRule } from './nfr-rules.js';
import type { OttoConfig } from './schema.js';
import type { ConfigPath, Problem } from './source.js';
import { parseDuration } from './units.js';
import { formatDuration } from './fields.js';

export function nfrProblems(config: OttoConfig): Problem[] {
  const intervalMs = parseDuration(config.metrics.interval);
  const problems: Problem[] = [];
  const checkRules = (rules: string[], at: ConfigPath) =>
    rules.forEach((text, index) => {
      let rule: NfrRule;
      try {
        rule = parseNfrRule(text);
      } catch {
        return; // the schema said why
      }
      // One sample is not a trend: a window of one interval would act on a spike.
      if (rule.windowMs < 2 * intervalMs) {
        problems.push({
          path: [...at, index],
          message: `rule "${rule.text}" looks at ${formatDuration(rule.windowMs)}, less than two metrics intervals (metrics.interval ${config.metrics.interval}): give it "for ${formatDuration(2 * intervalMs)}" or more`,
        });
      }
    });
  checkRules(config.nfr.rules, ['nfr', 'rules']);
  config.services.forEach((service, index) => {
    if (service.nfr) checkRules(service.nfr.rules, ['services', index, 'nfr', 'rules']);
    if (service.node && service.nfr && (service.nfr.action ?? config.nfr.action) === 'migrate') {
      problems.push({
        path: service.nfr.action ? ['services', index, 'nfr', 'action'] : ['services', index, 'nfr'],
        message: `service "${service.name}" is pinned to node "${service.node}", so it cannot migrate: use action restart or alert, or placement constraints instead of node`,
      });
    }
  });
  return problems;
}
