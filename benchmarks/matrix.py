"""Matrix round trip: questions through a real Synapse on 127.0.0.1 to the running bot and back.

Starts a throwaway Synapse (tests/support/synapse.py), the whole bot (``serve``) with a Matrix
account, and a matrix-nio client as the person asking. Prints p50/p90/max of the time from
sending a question to receiving the bot's reply (the person's sync included). Asserts nothing.

    python benchmarks/matrix.py [--questions 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.synapse import SynapseServer  # noqa: E402
from test_matrix import People, ask, open_direct_room, serving, settings_for  # noqa: E402

from bot.knowledge.loader import load_knowledge  # noqa: E402


async def run(synapse: SynapseServer, n: int, tmp: Path) -> None:
    kb = load_knowledge(ROOT / "knowledge")
    questions = [q for fact in kb.facts for q in fact.questions.en][:n]
    people = People(synapse)
    try:
        bot = people.register("bot")
        human = await people.new("human")
        settings = settings_for(synapse, bot, tmp / "bot.sqlite3")
        async with serving(settings.model_copy(update={"questions_per_minute": 10_000}), kb):
            room = await open_direct_room(human, bot.user_id)
            times = []
            for question in questions:
                start = time.perf_counter()
                await ask(human, room, bot.user_id, question)
                times.append((time.perf_counter() - start) * 1000)
    finally:
        await people.close()
    times.sort()
    print(
        f"matrix round trip through Synapse (127.0.0.1), {len(times)} questions: "
        f"p50 {statistics.median(times):.0f} ms, p90 {times[int(len(times) * 0.9) - 1]:.0f} ms, "
        f"max {times[-1]:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SynapseServer.running(Path(tmp)) as synapse:
        asyncio.run(run(synapse, args.questions, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
