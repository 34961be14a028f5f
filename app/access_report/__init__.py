"""An insured person's access report (who saw their record, when, what), in Thai and English."""
