from collections import Counter


class Component:
    def __init__(self, name, config, call):
        self.postings = Counter()

    def record(self, message):
        self.postings[message["account"]] += 1
        return {"count": self.postings[message["account"]], "accounts": len(self.postings)}
