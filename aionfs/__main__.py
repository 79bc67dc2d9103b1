"""python -m aionfs"""
from .cli import main

main()
