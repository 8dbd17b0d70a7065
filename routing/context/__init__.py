"""Context windows: how many tokens a request holds, and which pool models can take it
(``windows``). The router leaves out a model whose window the conversation plus the answer would
overflow, and says so; imports the core only.
"""
