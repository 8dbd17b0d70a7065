"""A realistic small set of routes, as an owner would write them, with prompts held out to test them.

``legal`` and ``cooking`` are the routes (their examples and negatives); ``HELD_OUT`` are paraphrases
no route has seen (each should match its route); ``UNRELATED`` are everyday prompts of other kinds
(none should match). docs/selectors.md quotes the figures measured on it.
"""

LEGAL = {
    "name": "legal",
    "description": "Questions about the law: contracts, tenancy, employment, wills",
    "examples": [
        "Can my landlord keep my security deposit if I leave the flat clean?",
        "What should I check before signing an employment contract with a non-compete clause?",
        "Is a verbal agreement legally binding if nothing was written down?",
        "How do I respond to a cease and desist letter about my website's name?",
        "My employer has not paid my overtime for three months; what are my legal options?",
        "What is the difference between a will and a living trust for passing on a house?",
        "Can I sue a contractor who took a deposit and never started the work?",
    ],
    "negatives": [
        "Write a courtroom drama scene where the lawyer gives a dramatic closing speech",
        "Summarise the plot of the film 12 Angry Men",
        "Explain the history of Roman law for a school essay",
    ],
}

COOKING = {
    "name": "cooking",
    "description": "Recipes and kitchen questions",
    "examples": [
        "How long should I roast a 2 kg chicken and at what temperature?",
        "Give me a vegetarian lasagne recipe that serves six",
        "What can I use instead of eggs when baking a chocolate cake?",
        "How do I make a sourdough starter from scratch?",
        "Why does my risotto turn out gluey and how do I fix it?",
        "What spices go into a simple chicken curry?",
    ],
    "negatives": [
        "Write a poem about my grandmother's kitchen",
        "What is the chemical formula of table salt?",
        "Design a logo for a bakery called Green Crumb",
    ],
}

HELD_OUT = {
    "legal": [
        "Can I be fired for refusing to sign a new contract my boss handed me?",
        "My tenant stopped paying rent, how do I start an eviction legally?",
        "Do I need a lawyer to contest a will that left me out?",
        "Is it legal for my employer to read my personal emails on a work laptop?",
    ],
    "cooking": [
        "What's the best way to cook salmon fillets in the oven?",
        "How do I keep homemade bread from going stale so fast?",
        "Suggest a quick dinner I can make with chickpeas, spinach and rice",
        "How long do I boil an egg for a runny yolk?",
    ],
}

UNRELATED = [
    "Write a Python function that reverses a linked list",
    "Prove that the square root of 2 is irrational",
    "Write a haiku about rain",
    "What is the capital of France?",
    "Translate 'good morning' into Japanese",
    "Explain how a transformer neural network works",
    "Hi there, how are you?",
    "Write a limerick about a sleepy cat",
    "Summarise the causes of the First World War",
    "What's the weather usually like in Lisbon in May?",
]


def routes_json(legal_target="deepseek-r1", cooking_target=None) -> dict:
    """The two routes as a routes file's JSON (targets: a pool id, {"rule": ...} or {"exclude": [...]})."""
    return {"routes": [{**LEGAL, "target": legal_target},
                       {**COOKING, "target": cooking_target or {"rule": "cheapest"}}]}
