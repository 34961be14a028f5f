"""refunds"""
