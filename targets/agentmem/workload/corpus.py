"""A deterministic synthetic corpus of agent memories.

Memories are short sentences about a topic (diet, travel, code review, ...) built from templates,
so texts on one topic share words and semantic search has real neighbours to find. Everything is
driven by a seeded ``random.Random``: the same seed gives the same corpus and the same queries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TOPICS: dict[str, list[str]] = {
    "coffee": "espresso latte roast beans grinder arabica morning cappuccino barista decaf mug brew".split(),
    "travel": "flight airport hotel passport luggage itinerary lisbon tokyo train booking visa beach".split(),
    "fitness": "running marathon gym squats cardio yoga stretching protein treadmill cycling swim pace".split(),
    "cooking": "recipe pasta garlic oven basil risotto baking sourdough spices curry noodles tomato".split(),
    "music": "guitar piano jazz concert playlist vinyl chords album drums symphony melody band".split(),
    "finance": "budget savings mortgage invoice taxes portfolio dividend pension expenses loan bank stocks".split(),
    "health": "doctor allergy vitamins sleep migraine dentist prescription checkup blood diet therapy".split(),
    "work": "meeting deadline manager project roadmap sprint standup quarterly review promotion office email".split(),
    "code": "python rust compiler refactor pull request database query latency deploy kubernetes tests bug".split(),
    "family": "daughter son parents wedding birthday grandmother cousins anniversary school dinner kids".split(),
    "pets": "dog cat vet leash kitten puppy aquarium walks grooming treats parrot litter".split(),
    "garden": "tomatoes roses compost seeds watering soil greenhouse pruning tulips herbs lawn shovel".split(),
    "books": "novel author library chapter fantasy biography poetry kindle reading series mystery paperback".split(),
    "movies": "cinema director trailer sequel documentary popcorn actor streaming thriller comedy subtitles".split(),
    "cars": "engine tires mileage electric charging garage insurance sedan brakes battery dealership oil".split(),
    "home": "apartment rent furniture sofa kitchen renovation paint landlord plumbing heating lamp".split(),
    "learning": "course spanish lessons exam vocabulary tutor grammar certificate lecture flashcards degree".split(),
    "shopping": "discount order delivery sneakers jacket refund cart groceries market receipt brand size".split(),
    "weather": "rain snow forecast umbrella humidity storm sunny temperature wind winter summer".split(),
    "games": "chess console puzzle multiplayer strategy level tournament controller board cards quest".split(),
}

COMMON = "likes prefers wants usually always never mentioned asked about the their with on for".split()

TEMPLATES = [
    "{user} {verb} {a} and {b} on {day}",
    "{user} {verb} {a} {b} {c}",
    "remember that {user} {verb} {a} with {b}",
    "{user} asked about {a} {b} and {c} for the {day} plan",
    "note {a} {b} {c} {d}",
    "{user} mentioned the {a} when talking about {b} and {c}",
]
VERBS = ["likes", "prefers", "wants", "usually has", "never skips", "mentioned", "is planning"]
DAYS = ["monday", "tuesday", "friday", "weekend", "morning", "evening", "holiday"]
USERS = ["alice", "bob", "the user", "she", "he", "they", "carol", "dave"]

RELATION_TYPES = ("related_to", "follows", "contradicts", "supports", "mentions")


@dataclass(frozen=True)
class MemorySpec:
    """One memory to write: its text, topic and importance."""

    content: str
    topic: str
    importance: float


class Corpus:
    """Deterministic generator of memory texts and matching search queries."""

    def __init__(self, seed: int = 7) -> None:
        self._rng = random.Random(seed)
        self._topics = list(TOPICS)

    def memory(self) -> MemorySpec:
        rng = self._rng
        topic = rng.choice(self._topics)
        words = TOPICS[topic]
        # Mostly on-topic words with the odd stray one, as real notes drift.
        picks = [
            rng.choice(words) if rng.random() < 0.85 else rng.choice(TOPICS[rng.choice(self._topics)])
            for _ in range(4)
        ]
        text = rng.choice(TEMPLATES).format(
            user=rng.choice(USERS),
            verb=rng.choice(VERBS),
            a=picks[0],
            b=picks[1],
            c=picks[2],
            d=picks[3],
            day=rng.choice(DAYS),
        )
        importance = round(min(1.0, max(0.0, rng.betavariate(2, 5))), 4)
        return MemorySpec(content=text, topic=topic, importance=importance)

    def memories(self, n: int) -> list[MemorySpec]:
        return [self.memory() for _ in range(n)]

    def query(self) -> str:
        rng = self._rng
        words = TOPICS[rng.choice(self._topics)]
        k = rng.randint(2, 3)
        return " ".join([*rng.sample(words, k), rng.choice(COMMON)])

    def relation_type(self) -> str:
        return self._rng.choice(RELATION_TYPES)

    def randint(self, a: int, b: int) -> int:
        return self._rng.randint(a, b)

    def random(self) -> float:
        return self._rng.random()

    def choice(self, seq: list[str]) -> str:
        return self._rng.choice(seq)
