class Component:
    def __init__(self, name, config, call):
        self.template = config

    def confirm(self, message):
        patient = " ".join(str(message["patient"]).split()) or "Patient:in"
        return {"text": self.template.format(**{**message, "patient": patient})}
