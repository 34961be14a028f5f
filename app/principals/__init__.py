"""principals"""
