#!/usr/bin/python3
"""asyncapi_check: keeps schemas/asyncapi.yaml true to what payq runs.

    asyncapi_check.py SOURCE_DIR [ASYNCAPI_FILE]

Checks, printing one line per finding and exiting 1 if any:
- it is AsyncAPI 2.6 and every local $ref resolves (files next to it too);
- every exchange or queue a channel names exists in schemas/topology.json
  with the same type and durability, and every exchange and queue upstream
  touches (payq.ingress, payq.results, payq.dead) has a channel;
- every payq.ingress message's routing key is one the topology routes
  somewhere, and every key payq.transfers is bound with has a message;
  messages with a JSON Schema name the schema file of their routing key;
- the outcome schema's properties are exactly the keys worker/events.[ch]
  writes, its status enum equals the routing keys it publishes, and it
  requires every field issue 13 names;
- the dead-letter headers are the names common/broker.h defines."""
import json
import os
import re
import sys

import yaml

ISSUE_FIELDS = {'id', 'status', 'reason', 'batch_id', 'business_date', 'amount', 'currency',
                'debit_account', 'credit_account', 'committed_at'}


INGRESS_KEYS = {'transfer', 'transfers', 'account', 'batch'}


def resolve(doc, base, ref, problems):
    if ref.startswith('#/'):
        node = doc
        for part in ref[2:].split('/'):
            if not isinstance(node, dict) or part not in node:
                problems.append(f'unresolved $ref {ref}')
                return None
            node = node[part]
        return node
    path = os.path.join(base, ref)
    if not os.path.exists(path):
        problems.append(f'unresolved $ref {ref}')
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def walk_refs(node, doc, base, problems):
    if isinstance(node, dict):
        if '$ref' in node:
            resolve(doc, base, node['$ref'], problems)
        for v in node.values():
            walk_refs(v, doc, base, problems)
    elif isinstance(node, list):
        for v in node:
            walk_refs(v, doc, base, problems)


def deref(doc, base, node, problems):
    if isinstance(node, dict) and '$ref' in node:
        return resolve(doc, base, node['$ref'], problems) or {}
    return node or {}


def check_topology(doc, topo, problems):
    exchanges = {e['name']: e for e in topo['exchanges']}
    queues = {q['name']: q for q in topo['queues']}
    named = set()
    for cname, ch in doc.get('channels', {}).items():
        amqp = ch.get('bindings', {}).get('amqp', {})
        if amqp.get('is') == 'routingKey':
            ex = amqp.get('exchange', {})
            named.add(ex.get('name'))
            t = exchanges.get(ex.get('name'))
            if not t:
                problems.append(f'channel {cname}: exchange {ex.get("name")} not in topology')
            elif t['type'] != ex.get('type') or t['durable'] != ex.get('durable'):
                problems.append(f'channel {cname}: exchange type/durable differ from topology')
        elif amqp.get('is') == 'queue':
            q = amqp.get('queue', {})
            named.add(q.get('name'))
            t = queues.get(q.get('name'))
            if not t:
                problems.append(f'channel {cname}: queue {q.get("name")} not in topology')
            elif t['durable'] != q.get('durable'):
                problems.append(f'channel {cname}: queue durability differs from topology')
        else:
            problems.append(f'channel {cname}: no amqp binding')
    for must in ('payq.ingress', 'payq.results', 'payq.dead'):
        if must not in named:
            problems.append(f'no channel for {must}')


def key_matches(pattern, key):
    rx = re.escape(pattern).replace(r'\#', '.*').replace(r'\*', '[^.]+')
    return re.fullmatch(rx, key) is not None


def check_ingress(doc, base, topo, problems):
    ch = doc['channels'].get('payq.ingress', {})
    msgs = deref(doc, base, ch.get('publish', {}).get('message'), problems)
    keys = set()
    for m in msgs.get('oneOf', [msgs]):
        m = deref(doc, base, m, problems)
        rk = m.get('x-payq-routing-key')
        keys.add(rk)
        if not rk:
            problems.append('payq.ingress message without x-payq-routing-key')
        routes = [b for b in topo['bindings'] if b['source'] == 'payq.ingress'
                  and key_matches(b['routing_key'], rk or '')]
        if not routes:
            problems.append(f'payq.ingress message {rk}: the topology routes it nowhere')
        ref = m.get('payload', {}).get('$ref', '')
        if ref and not ref.startswith('#') and os.path.basename(ref) != f'{rk}.schema.json':
            problems.append(f'payq.ingress message {rk}: payload is {ref}')
    if keys != INGRESS_KEYS:
        problems.append(f'payq.ingress messages {sorted(map(str, keys))}, want {sorted(INGRESS_KEYS)}')
    for b in topo['bindings']:
        if b['source'] == 'payq.ingress' and b['destination'] == 'payq.transfers' \
                and b['routing_key'] not in keys:
            problems.append(f'routing key {b["routing_key"]} has no payq.ingress message')


def c_literal(text, name):
    """The SQL of a C definition: its adjacent string literals joined."""
    m = re.search(re.escape(name) + r'(?:\[\])?\s*=?\s*((?:\\?\s*"(?:[^"\\]|\\.)*"\s*)+)', text)
    return ''.join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))) if m else ''


def select_keys(select_list):
    """Each column's name (its alias, else the column) and the literal a
    status column is, at parenthesis depth 0."""
    items, depth, cur = [], 0, ''
    for ch in select_list:
        depth += (ch == '(') - (ch == ')')
        if ch == ',' and depth == 0:
            items.append(cur)
            cur = ''
        else:
            cur += ch
    items.append(cur)
    keys, statuses = [], set()
    for item in (i.strip() for i in items):
        expr, _, alias = item.rpartition(' AS ')
        key = alias if expr else item
        keys.append(key)
        lit = re.fullmatch(r"'([a-z_]+)'(?:::text)?", expr.strip())
        if key == 'status' and lit:
            statuses.add(lit.group(1))
    return keys, statuses


def events_c_keys(src):
    """The keys every outcome event is written with: the columns of the
    select lists worker/events.h (the transfer event's) and events.c (the
    conflict's and the dead letter's) read, one key per column
    (worker/event_body.h)."""
    def read(f):
        return open(os.path.join(src, 'worker', f), encoding='utf-8').read()
    lists = [c_literal(read('events.h'), '#define PAYQ_EVENT_TRANSFER_COLS')]
    text = read('events.c')
    for name in ('SQL_CONFLICTS', 'SQL_DEAD'):
        sql = c_literal(text, 'static const char ' + name)
        m = re.match(r'SELECT (.*?) FROM ', sql)
        lists.append(m.group(1) if m else '')
    keys, statuses = set(), set()
    for sl in lists:
        k, st = select_keys(sl)
        if not sl or k[:2] != ['id', 'status']:
            sys.exit(f'asyncapi_check: an event select list not found or not (id, status, ...): {sl!r}')
        keys |= set(k)
        statuses |= st
    return keys, statuses


def check_results(doc, base, src, problems):
    ch = doc['channels'].get('payq.results', {})
    msg = deref(doc, base, ch.get('subscribe', {}).get('message'), problems)
    schema = deref(doc, base, msg.get('payload'), problems)
    props = set(schema.get('properties', {}))
    keys, statuses = events_c_keys(src)
    written = keys  # every column of the events' select lists
    if written != props:
        problems.append(f'outcome: events.c writes {sorted(written - props)} undocumented, '
                        f'documents {sorted(props - written)} never written')
    missing = ISSUE_FIELDS - set(schema.get('required', []))
    if missing:
        problems.append(f'outcome: does not require {sorted(missing)}')
    enum = set(schema.get('properties', {}).get('status', {}).get('enum', []))
    published = statuses | {'posted', 'rejected'}  # plus payq.transfers.status
    if enum != published or set(msg.get('x-payq-routing-keys', [])) != enum:
        problems.append(f'outcome: status enum {sorted(enum)} vs published {sorted(published)}')


def check_dead(doc, base, src, problems):
    ch = doc['channels'].get('payq.dead', {})
    msg = deref(doc, base, ch.get('subscribe', {}).get('message'), problems)
    headers = set(msg.get('headers', {}).get('properties', {}))
    text = open(os.path.join(src, 'common/broker.h'), encoding='utf-8').read()
    defined = set(re.findall(r'#define PAYQ_HEADER_DEAD_\w+ "([^"]+)"', text))
    if headers != defined:
        problems.append(f'dead-letter headers {sorted(headers)} vs broker.h {sorted(defined)}')


def main():
    src = sys.argv[1]
    path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(src, 'schemas/asyncapi.yaml')
    base = os.path.dirname(path)
    with open(path, encoding='utf-8') as f:
        doc = yaml.safe_load(f)
    with open(os.path.join(src, 'schemas/topology.json'), encoding='utf-8') as f:
        topo = json.load(f)
    problems = []
    if str(doc.get('asyncapi', '')).split('.')[:2] != ['2', '6']:
        problems.append('not an AsyncAPI 2.6 document')
    walk_refs(doc, doc, base, problems)
    check_topology(doc, topo, problems)
    check_ingress(doc, base, topo, problems)
    check_results(doc, base, src, problems)
    check_dead(doc, base, src, problems)
    for p in problems:
        print(p)
    print(f'asyncapi_check: {len(problems)} problem(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
