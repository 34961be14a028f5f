"""access_report"""
