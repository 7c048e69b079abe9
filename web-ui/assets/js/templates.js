// Job spec templates: the seed's three scenarios (examples/jobs/) ready for the server,
// each on a `generator` source (runs by itself) and on an `http` source (records sent with
// "Send test records" or POST /api/v1/jobs/ID/ingest). UDFs come from the `examples` module
// (upload it first), pinned at creation by `examples@latest`.

const visitsStages = [
  { map: { udf: 'examples@latest', function: 'parse_visit', value: 'i64' } },
  { reduce_by_key_and_window: {
    length: '60s', slide: '1s', reduce: { builtin: 'sum', inverse: true }, filter: 'nonzero' } },
];

const errorsStages = [
  { filter: { udf: 'examples@latest', function: 'is_error' } },
  { map: { udf: 'examples@latest', function: 'minute_bucket', value: 'i64' } },
  { reduce_by_key: { builtin: 'sum' } },
];

const clicksStages = [
  { flat_map: { udf: 'examples@latest', function: 'clicks_by_user', value: 'i64' } },
  { reduce_by_key_and_window: {
    length: '5m', slide: '1m', reduce: { builtin: 'sum', inverse: true }, filter: 'nonzero' } },
];

const sink = { print: { records: 10 } };

function spec(name, source, stages, extra = {}) {
  return { name, batch_interval: '1s', source, stages, sink, ...extra };
}

// Lines typed by hand may be malformed: the http variants send those to the dead letters.
const skip = { on_bad_record: 'skip' };

export const TEMPLATES = [
  {
    id: 'visits-generator',
    label: 'Visits per user, last 60 s (generator)',
    spec: spec('visits per user, last 60 s', { generator: { format: 'visits', rate_per_s: 1000 } }, visitsStages),
  },
  {
    id: 'visits-http',
    label: 'Visits per user, last 60 s (http ingest)',
    sample: 'u1,1700000000,/home\nu2,1700000001,/cart\nu1,1700000002,/pay',
    spec: spec('visits per user, last 60 s (http)', { http: {} }, visitsStages, skip),
  },
  {
    id: 'errors-generator',
    label: 'ERROR lines per minute (generator)',
    spec: spec('ERROR lines per minute', { generator: { format: 'logs', rate_per_s: 1000 } }, errorsStages),
  },
  {
    id: 'errors-http',
    label: 'ERROR lines per minute (http ingest)',
    sample: '1700000000|ERROR|disk full\n1700000030|INFO|ok\n1700000061|ERROR|timeout',
    spec: spec('ERROR lines per minute (http)', { http: {} }, errorsStages, skip),
  },
  {
    id: 'clicks-generator',
    label: 'Clicks per user, 5-min window every minute (generator)',
    spec: spec('clicks per user, 5 min sliding 1 min', { generator: { format: 'behavior', rate_per_s: 1000 } }, clicksStages),
  },
  {
    id: 'clicks-http',
    label: 'Clicks per user, 5-min window every minute (http ingest)',
    sample: 'u1,1700000000,click,i9\nu2,1700000001,view,i3\nu1,1700000002,click,i4',
    spec: spec('clicks per user, 5 min sliding 1 min (http)', { http: {} }, clicksStages, skip),
  },
];

export function template(id) {
  return TEMPLATES.find((t) => t.id === id) || null;
}
