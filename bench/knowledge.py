"""Knowledge retrieval recall: does ``agents.knowledge.search`` find the entry
that answers a caller's question among its top 3 passages?

``python -m bench.knowledge --json bench/results/knowledge.json`` measures a
labelled set (:data:`ENTRIES`, :data:`QUESTIONS`: each question names the
entry that answers it) on the embedded default database (SQLite) and on
PostgreSQL (``--postgres-url``). Each database is measured in a child process
with its own settings, on a fresh test database that is dropped afterwards.
It prints a table and writes ``{"k", "questions", "entries", "databases":
{name: {"recall_at_1", "recall_at_3", "mrr", "search_ms_p50", "misses"}}}``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

K = 3
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/voiceproj_bench_knowledge"

# A bakery-café's knowledge, as an operator would write it.
ENTRIES: dict[str, str] = {
    "Opening hours": (
        "We are open Monday to Friday from 6:30 in the morning until 7 in the evening. "
        "On Saturdays we open at 8 and close at 6. On Sundays we open at noon and close at 5. "
        "We are closed on public holidays."
    ),
    "Location and parking": (
        "The bakery is at 14 Harbour Street, next to the fish market. Customers park for free "
        "in the lot behind the building for up to two hours. The number 4 bus stops in front."
    ),
    "Delivery": (
        "We deliver within five kilometres of the shop. Delivery costs 3 euros and is free for "
        "orders above 30 euros. Orders placed before 10 in the morning arrive the same day."
    ),
    "Custom cakes": (
        "Birthday and wedding cakes are made to order. Please order a custom cake at least "
        "three days in advance. A cake for ten people starts at 35 euros; tiered wedding cakes "
        "need two weeks' notice."
    ),
    "Allergens": (
        "All our bread contains gluten. We bake one gluten-free loaf each morning in a separate "
        "oven. Nuts are used in the kitchen, so we cannot guarantee any product is nut free. "
        "Vegan pastries are marked with a green label."
    ),
    "Payment": (
        "We accept cash, debit and credit cards, and contactless phone payments. We do not "
        "accept cheques. Company invoices are available on request."
    ),
    "Refunds and complaints": (
        "If a product was not right, bring it back within two days with the receipt for a "
        "refund or an exchange. Complaints about deliveries go to the manager by email."
    ),
    "Loyalty card": (
        "The loyalty card gives you a free coffee after nine coffees. Stamps are added at the "
        "till; the card is free and never expires."
    ),
    "Catering": (
        "We cater for office meetings and events of up to 200 guests with sandwiches, "
        "pastries and coffee. Catering orders need one week's notice and a 20 percent deposit."
    ),
    "Jobs": (
        "We are hiring bakers for the early shift and weekend shop assistants. Send your CV to "
        "the shop or hand it in at the counter. Early shifts start at 4 in the morning."
    ),
}

# (question as a caller says it, the entry that answers it)
QUESTIONS: list[tuple[str, str]] = [
    ("What time do you open tomorrow morning?", "Opening hours"),
    ("Are you open on Sunday?", "Opening hours"),
    ("When do you close on Saturdays?", "Opening hours"),
    ("Are you open on public holidays?", "Opening hours"),
    ("Where is the bakery?", "Location and parking"),
    ("Is there parking near the shop?", "Location and parking"),
    ("Which bus goes to your shop?", "Location and parking"),
    ("Do you deliver to my house?", "Delivery"),
    ("How much does delivery cost?", "Delivery"),
    ("If I order now will it arrive today?", "Delivery"),
    ("Can you make a birthday cake?", "Custom cakes"),
    ("How far in advance should I order a wedding cake?", "Custom cakes"),
    ("What does a cake for ten people cost?", "Custom cakes"),
    ("Do you have gluten free bread?", "Allergens"),
    ("My son has a nut allergy, is that safe?", "Allergens"),
    ("Do you sell vegan pastries?", "Allergens"),
    ("Can I pay by card?", "Payment"),
    ("Do you take cheques?", "Payment"),
    ("Can I get an invoice for my company?", "Payment"),
    ("The bread I bought was stale, can I get my money back?", "Refunds and complaints"),
    ("Who do I complain to about a late delivery?", "Refunds and complaints"),
    ("Can I exchange a product?", "Refunds and complaints"),
    ("How does the loyalty card work?", "Loyalty card"),
    ("When do I get a free coffee?", "Loyalty card"),
    ("Does my stamp card expire?", "Loyalty card"),
    ("Can you cater our office meeting?", "Catering"),
    ("How many guests can your catering serve?", "Catering"),
    ("Do I need to pay a deposit for an event?", "Catering"),
    ("Are you hiring?", "Jobs"),
    ("Where do I send my CV?", "Jobs"),
    ("What time does the early shift start?", "Jobs"),
    ("Is the shop next to the fish market?", "Location and parking"),
    ("Can I pay with my phone?", "Payment"),
    ("How long can I park for free?", "Location and parking"),
]


def measure() -> dict[str, Any]:
    """In a child process with Django configured: the figures on this database."""
    import django

    django.setup()
    from django.db import connection

    from accounts.models import User
    from agents.knowledge import search
    from agents.models import Agent, KnowledgeEntry

    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        owner = User.objects.create_user("bench", "bench@example.com", "bench-pass-1234")
        agent = Agent.objects.create(owner=owner, name="Bakery")
        ids = {
            title: KnowledgeEntry.objects.create(agent=agent, title=title, content=text).pk
            for title, text in ENTRIES.items()
        }
        ranks: list[int | None] = []
        times: list[float] = []
        misses = []
        for question, title in QUESTIONS:
            started = time.perf_counter()
            found = [p.entry_id for p in search(agent.pk, question, k=K)]
            times.append((time.perf_counter() - started) * 1000)
            rank = found.index(ids[title]) + 1 if ids[title] in found else None
            ranks.append(rank)
            if rank != 1:
                by_id = {v: k for k, v in ids.items()}
                misses.append(
                    {"question": question, "expected": title, "got": [by_id[i] for i in found]}
                )
        return {
            "engine": connection.vendor,
            "recall_at_1": round(sum(r == 1 for r in ranks) / len(ranks), 3),
            f"recall_at_{K}": round(sum(r is not None for r in ranks) / len(ranks), 3),
            "mrr": round(sum(1 / r for r in ranks if r) / len(ranks), 3),
            "search_ms_p50": round(statistics.median(times), 2),
            "misses": misses,
        }
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)


def run_child(database_url: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": os.environ.get("DEBUG", "true"),
        "DJANGO_SETTINGS_MODULE": "voiceproj.settings",
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.knowledge", "--measure"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure()))
        return
    databases = {
        # A file, as the embedded default is; the test database beside it is in memory.
        "sqlite": run_child("sqlite:///bench-knowledge.sqlite3"),
        "postgresql": run_child(args.postgres_url),
    }
    results = {"k": K, "questions": len(QUESTIONS), "entries": len(ENTRIES), "databases": databases}
    print(f"{'database':<12} recall@1  recall@{K}  MRR    search p50")
    for name, figures in databases.items():
        print(
            f"{name:<12} {figures['recall_at_1']:<9} {figures[f'recall_at_{K}']:<9} "
            f"{figures['mrr']:<6} {figures['search_ms_p50']} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
