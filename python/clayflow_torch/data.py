"""What clayflow does on the host, done the same way here: its seeded generator (mulberry32),
row splits and epoch shuffles (so a twin run on a CSV file trains on clayflow's split and
batches), its CSV reader's rules, and JavaScript's number formatting (score's output)."""
import math
import re

M32 = 0xFFFFFFFF


def _imul(a, b):
    """Math.imul: the low 32 bits of the product, as an unsigned int here."""
    return (a * b) & M32


def mulberry32(seed):
    state = [seed & M32]

    def next_uniform():
        state[0] = (state[0] + 0x6D2B79F5) & M32
        t = state[0]
        t = _imul(t ^ (t >> 15), t | 1)
        t ^= (t + _imul(t ^ (t >> 7), t | 61)) & M32
        return ((t ^ (t >> 14)) & M32) / 4294967296

    return next_uniform


def shuffle(values, seed):
    """makeRng(seed).shuffle: Fisher-Yates with j = floor(u * (i + 1))."""
    uniform = mulberry32(int(math.trunc(seed)))
    a = list(values)
    for i in range(len(a) - 1, 0, -1):
        j = math.floor(uniform() * (i + 1))
        a[i], a[j] = a[j], a[i]
    return a


def epoch_seed(seed, epoch):
    h = _imul((int(math.trunc(seed)) & M32) ^ 0x9E3779B9, 0x85EBCA6B)
    h = _imul(h ^ (h >> 13) ^ _imul(epoch + 1, 0xC2B2AE35), 0x27D4EB2F)
    return (h ^ (h >> 16)) & M32


def js_round(x):
    """Math.round: halves go up."""
    return math.floor(x + 0.5)


def split_rows(n, valid=0.0, test=0.0, seed=0):
    """clayflow's splitRows: test first, then valid, then train, each sorted."""
    n_test = js_round(test * n)
    n_valid = js_round(valid * n)
    if n - n_test - n_valid <= 0:
        raise ValueError(f"no training rows left (n={n}, valid={n_valid}, test={n_test})")
    order = shuffle(range(n), seed)
    return sorted(order[n_valid + n_test :]), sorted(order[n_test : n_test + n_valid]), sorted(order[:n_test])


# ---- CSV (the rules of src/data/csv.ts) ----
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _records(text, delim):
    records, fields, field = [], [], ""
    in_quotes = touched = False
    i = 0
    while i < len(text):
        ch = text[i]
        if in_quotes:
            if ch == '"':
                if i + 1 < len(text) and text[i + 1] == '"':
                    field += '"'
                    i += 1
                else:
                    in_quotes = False
            else:
                field += ch
        elif ch == '"' and field.strip() == "":
            in_quotes, field, touched = True, "", True
        elif ch == delim:
            fields.append(field)
            field, touched = "", True
        elif ch in "\r\n":
            if ch == "\r" and i + 1 < len(text) and text[i + 1] == "\n":
                i += 1
            fields.append(field)
            if touched or len(fields) > 1 or field.strip() != "":
                records.append(fields)
            fields, field, touched = [], "", False
        else:
            field += ch
        i += 1
    if in_quotes:
        raise ValueError("unterminated quoted field")
    if field != "" or fields or touched:
        fields.append(field)
        records.append(fields)
    return records


def read_csv(path):
    """-> (columns, has_header, rows as a list of float lists)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.startswith("\ufeff"):
        text = text[1:]
    first = next((l for l in re.split(r"\r?\n", text) if l.strip() != ""), "")
    unquoted = re.sub(r'"([^"]|"")*"', "", first)
    delim = max([",", ";", "\t"], key=lambda d: (unquoted.count(d), d == ","))
    if unquoted.count(delim) == 0:
        delim = ","
    recs = _records(text, delim)
    if not recs:
        raise ValueError(f"{path}: empty CSV file (no rows)")
    has_header = any(not NUMBER.match(f.strip()) for f in recs[0])
    cols = len(recs[0])
    columns = [f.strip() for f in recs[0]] if has_header else [f"col{j + 1}" for j in range(cols)]
    body = recs[1:] if has_header else recs
    if not body:
        raise ValueError(f"{path}: header but no data rows")
    rows = []
    for r, rec in enumerate(body):
        if len(rec) != cols:
            raise ValueError(f"{path}: data row {r + 1}: expected {cols} columns, got {len(rec)}")
        row = []
        for j, raw in enumerate(rec):
            s = raw.strip()
            if not NUMBER.match(s):
                raise ValueError(f"{path}: data row {r + 1}, column {j + 1} ({columns[j]}): {s!r} is not a finite number")
            row.append(float(s))
        rows.append(row)
    return columns, has_header, rows


def js_number(v):
    """String(v) in JavaScript: shortest round-trip digits, JS's exponent rules."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "0"
    sign = "-" if v < 0 else ""
    mant, _, exp = repr(abs(float(v))).partition("e")
    whole, _, frac = mant.partition(".")
    if frac == "0":
        frac = ""
    digits = (whole + frac).lstrip("0")
    point = len(whole) + (int(exp) if exp else 0)  # value = 0.DIGITS... * 10^point before stripping
    point -= len(whole + frac) - len((whole + frac).lstrip("0"))
    digits = digits.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        es = ("+" if e >= 0 else "-") + str(abs(e))
        body = (digits if k == 1 else digits[0] + "." + digits[1:]) + "e" + es
    return sign + body
