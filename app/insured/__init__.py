"""insured"""
