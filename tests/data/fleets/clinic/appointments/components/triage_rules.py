"""Triage: a score from the symptoms named, raised for small children and the very old."""


def words(symptoms):
    for s in symptoms:
        if isinstance(s, str):
            yield s.casefold().strip()


class Component:
    def __init__(self, name, config, call):
        self.weights = {word.casefold(): weight for word, weight in config}

    def assess(self, message):
        score = sum(self.weights.get(w, 1) for w in words(message["symptoms"]))
        age = message["age"]
        if age < 2 or age > 80:
            score += 3
        if score >= 9:
            level = "Notaufnahme"
        elif score >= 5:
            level = "heute noch"
        else:
            level = "Hausärztin"
        return {"score": score, "level": level, "named": sorted(set(words(message["symptoms"])))}
